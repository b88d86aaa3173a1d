"""The org's model registry: published models, kept as catalog documents of the org.

A published model is one document in ``catalog`` (``store.catalog``): the entry a new job
runs, plus ``model`` (what the registry shows) and ``pretrained`` (where its weights
are). One document, so an entry never exists without its record or the other way round.

Publishing is three steps, each safe to repeat after a crash: ``reserve`` inserts the
document with ``publishing: true`` under an id derived from (org, name, version), so the
version is taken and nothing lists or runs it yet; the files are copied; ``complete``
clears the flag. Removal is the reverse: ``begin_removal`` hides it, the files go, then
``delete``. A crash in between leaves a document a second publish or remove finishes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo import DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from jobyard.schemas.catalog import BaseExperiment
from jobyard.store.catalog import Catalog, entry_doc
from jobyard.store.errors import Conflict, NotFound
from jobyard.store.guard import guarded
from jobyard.store.paging import Page, fetch_page
from jobyard.store.timeutil import utcnow

Doc = dict[str, Any]
PUBLISHING, PUBLISHED, REMOVING = "publishing", "published", "removing"


class VersionTaken(Conflict):
    """Another publish reserved this name and version first: take the next one."""


class ModelInUse(Conflict):
    def __init__(self, doc: Mapping[str, Any], job_ids: list[str]) -> None:
        model = doc.get("model") or {}
        shown = ", ".join(job_ids[:5]) + (" ..." if len(job_ids) > 5 else "")
        super().__init__(
            f"published model {model.get('name')} version {model.get('version')} "
            f"({doc['_id']}) is used by jobs that have not finished ({shown}); cancel them "
            "or wait until they finish"
        )
        self.job_ids = job_ids


@guarded
class Models:
    def __init__(self, db: Database[Doc], catalog: Catalog) -> None:
        self._coll = db["catalog"]
        self._catalog = catalog

    def _published(self, org: str) -> Doc:
        return {"scope": org, "published": True}

    # -- reads ---------------------------------------------------------------------------

    def next_version(self, org: str, name: str) -> int:
        found = list(
            self._coll.find({**self._published(org), "model_name": name}, {"model_version": 1})
            .sort("model_version", DESCENDING)
            .limit(1)
        )
        return int(found[0]["model_version"]) + 1 if found else 1

    def of_checkpoint(self, org: str, job_id: str, checkpoint: str) -> Doc | None:
        """The newest version published from this job's checkpoint."""
        found = list(
            self._coll.find(
                {**self._published(org), "source_job": job_id, "model_checkpoint": checkpoint}
            )
            .sort("model_version", DESCENDING)
            .limit(1)
        )
        return found[0] if found else None

    def of_job(self, org: str, job_id: str) -> list[Doc]:
        return list(self._coll.find({**self._published(org), "source_job": job_id}))

    def get(self, org: str, model_id: str) -> Doc:
        doc = self._coll.find_one({"_id": model_id, **self._published(org)})
        if doc is None:
            raise NotFound("model", model_id)
        return doc

    def list_page(self, org: str, page: Page) -> tuple[list[Doc], dict[str, int]]:
        return fetch_page(self._coll, self._published(org), page)

    # -- writes --------------------------------------------------------------------------

    def reserve(
        self, entry: BaseExperiment, model: Mapping[str, Any], pretrained: Mapping[str, Any]
    ) -> Doc:
        """Take (org, name, version) for a publish that is about to copy its files."""
        now = utcnow()
        doc = {
            **entry_doc(entry, False, now),
            "created_on": now,
            "version": 1,
            "published": True,
            "publishing": True,
            "model_name": model["name"],
            "model_version": model["version"],
            "model_checkpoint": model["checkpoint"],
            "source_job": model["source_job_id"],
            "team": model.get("team") or "",
            "model_workspace": pretrained["workspace"],
            "pretrained": dict(pretrained),
            "model": {**model, "state": PUBLISHING, "created_on": now},
        }
        try:
            self._coll.insert_one(doc)
        except DuplicateKeyError:
            raise VersionTaken(f"{model['name']} version {model['version']} is taken") from None
        return doc

    def complete(self, model_id: str, model: Mapping[str, Any]) -> Doc:
        found = self._coll.find_one_and_update(
            {"_id": model_id, "published": True},
            {"$set": {"publishing": False, "model": {**model, "state": PUBLISHED}}},
            return_document=True,
        )
        if found is None:
            raise NotFound("model", model_id)
        self._catalog.forget_entry(model_id)
        return found

    def begin_removal(self, doc: Mapping[str, Any], entry: BaseExperiment) -> None:
        """Hidden from lists and new jobs before any file goes; ``ModelInUse`` (and still
        listed) while a job that has not finished runs it. Checked before and after it is
        hidden, so a job created in between is seen too."""
        using = self._catalog.users(entry)
        if using:
            raise ModelInUse(doc, using)
        self._set_state(doc, REMOVING)
        using = self._catalog.users(entry)
        if using:
            self._set_state(doc, PUBLISHED)
            raise ModelInUse(doc, using)

    def _set_state(self, doc: Mapping[str, Any], state: str) -> None:
        model = {**(doc.get("model") or {}), "state": state}
        self._coll.update_one(
            {"_id": doc["_id"], "published": True},
            {"$set": {"publishing": state != PUBLISHED, "model": model}},
        )
        self._catalog.forget_entry(str(doc["_id"]))

    def delete(self, model_id: str) -> None:
        self._coll.delete_one({"_id": model_id, "published": True})
        self._catalog.forget_entry(model_id)
