"""The workload catalog in MongoDB: base experiments, global or of one org.

Each document keeps the entry as the admin wrote it (as JSON text: JSON Schemas have ``$``
keys and ``spec_fields`` dotted ones, neither of which every MongoDB-wire server stores as
field names) beside the fields lists filter on. The built-in entries (``workloads.catalog``)
are written at start-up; an admin's entries come from the API or ``jobyard admin workloads
import``. Every org sees the global entries and its own.

Job creates and dispatches look entries up by id many times a second, so entries read by
id are kept in memory for ``cache_seconds``; a miss always reads MongoDB, so an entry
created a moment ago in another process is found, and an update is seen within that time.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from jobyard.schemas.catalog import GLOBAL, BaseExperiment, NoWorkload, load_entry, pick
from jobyard.schemas.job import ACTIVE_STATES
from jobyard.store.errors import Conflict, NotFound
from jobyard.store.guard import guarded
from jobyard.store.paging import Page, count, fetch_page
from jobyard.store.timeutil import utcnow
from jobyard.workloads.catalog import reference_entries

Doc = dict[str, Any]
BUILTIN: tuple[BaseExperiment, ...] = tuple(load_entry(e) for e in reference_entries())
REFERENCE = BUILTIN[0]  # the reference workload's experiment entry


class EntryInUse(Conflict):
    def __init__(self, entry: BaseExperiment, job_ids: list[str]) -> None:
        shown = ", ".join(job_ids[:5]) + (" ..." if len(job_ids) > 5 else "")
        super().__init__(
            f"base experiment {entry.id} ({entry.network_arch}/{entry.name}) is used by "
            f"jobs that have not finished ({shown}); cancel them or wait until they finish"
        )
        self.job_ids = job_ids


class DuplicateEntry(Conflict):
    def __init__(self, entry: BaseExperiment, existing: str) -> None:
        super().__init__(
            f"a base experiment {entry.network_arch}/{entry.name} already exists in scope "
            f"{entry.scope}: {existing}; update it with PUT instead"
        )
        self.existing_id = existing


def entry_doc(entry: BaseExperiment, builtin: bool, now: Any) -> Doc:
    return {
        "_id": entry.id,
        "scope": entry.scope,
        "org": None if entry.scope == GLOBAL else entry.scope,  # what org backups select
        "network_arch": entry.network_arch,
        "name": entry.name,
        "kind": entry.kind,
        "ngc_path": entry.ngc_path,
        "builtin": builtin,
        "entry": json.dumps(dict(entry.data)),  # in the order written: actions list so
        "last_modified": now,
    }


def entry_of(doc: Mapping[str, Any]) -> BaseExperiment:
    """The stored entry, under its stored id (which a PUT that renames it keeps), with a
    published model's weights (``store.models``)."""
    entry = load_entry(json.loads(doc["entry"]), doc["scope"])
    if entry.id != doc["_id"] or doc.get("pretrained"):
        entry = dataclasses.replace(entry, id=doc["_id"], pretrained=doc.get("pretrained"))
    return entry


# A published model is listed and run by id only once its files are all written; a job
# naming only a network_arch never picks one (it would silently start from its weights).
READY: Doc = {"publishing": {"$ne": True}}
NOT_PUBLISHED: Doc = {"published": {"$ne": True}}


@guarded
class Catalog:
    def __init__(
        self,
        db: Database[Doc],
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._coll = db["catalog"]
        self._jobs = db["jobs"]
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, BaseExperiment]] = {}

    # -- start-up ------------------------------------------------------------------------

    def seed(self, entries: Iterable[BaseExperiment] = BUILTIN) -> int:
        """Write the built-in entries as this release has them; returns how many changed
        (an entry already stored as it is stays untouched, its times and version too)."""
        written = 0
        for entry in entries:
            now = utcnow()
            doc = entry_doc(entry, True, now)
            stored = self._coll.find_one({"_id": entry.id})
            if stored is not None and all(
                stored.get(k) == v for k, v in doc.items() if k != "last_modified"
            ):
                continue
            self._coll.update_one(
                {"_id": entry.id},
                {"$set": doc, "$setOnInsert": {"created_on": now, "version": 1}},
                upsert=True,
            )
            written += 1
        self._cache.clear()
        return written

    # -- reads ---------------------------------------------------------------------------

    def _visible(self, org: str | None) -> Doc:
        return {"scope": {"$in": [GLOBAL, org]}} if org else {"scope": GLOBAL}

    def get(self, org: str | None, entry_id: str) -> BaseExperiment:
        """The entry ``org`` sees under ``entry_id`` (org None: global ones only)."""
        cached = self._cache.get(entry_id)
        if cached is not None and self._clock() - cached[0] < self._cache_seconds:
            entry = cached[1]
        else:
            doc = self._coll.find_one({"_id": entry_id, **READY})
            if doc is None:
                raise NotFound("base experiment", entry_id)
            entry = entry_of(doc)
            self._cache[entry_id] = (self._clock(), entry)
        if entry.scope not in (GLOBAL, org):
            raise NotFound("base experiment", entry_id)
        return entry

    def document(self, org: str | None, entry_id: str) -> Doc:
        """The stored document (version and times beside the entry)."""
        doc = self._coll.find_one({"_id": entry_id, **self._visible(org), **READY})
        if doc is None:
            raise NotFound("base experiment", entry_id)
        return doc

    def visible(self, org: str | None, query: Mapping[str, Any] | None = None) -> list[Doc]:
        """Documents ``org`` sees, its own first, then global ones an admin added, then the
        built-in ones: the order in which a job naming only a network_arch finds its entry."""
        docs = list(self._coll.find({**self._visible(org), **(query or {})}))
        docs.sort(key=lambda d: (d["scope"] == GLOBAL, bool(d.get("builtin")), d["created_on"]))
        return docs

    def list_page(
        self, org: str, page: Page, read_only: bool | None = None
    ) -> tuple[list[BaseExperiment], dict[str, int]]:
        docs, info = fetch_page(self._coll, self._listed(org, read_only), page)
        return [entry_of(d) for d in docs], info

    def count(self, org: str, page: Page, read_only: bool | None = None) -> int:
        return count(self._coll, page.query(self._listed(org, read_only)))

    def _listed(self, org: str, read_only: bool | None) -> Doc:
        """What an org's list shows: ``read_only`` (seed 001) picks global or own entries."""
        if read_only is None:
            return {**self._visible(org), **READY}
        return {"scope": GLOBAL if read_only else org, **READY}

    def for_job(self, job: Mapping[str, Any]) -> BaseExperiment:
        """The entry a job runs: the one it names by id, else the first of its network_arch
        (``NoWorkload`` says why there is none)."""
        org = job.get("org")
        ids = list(job.get("base_experiment_ids") or [])
        for entry_id in ids:
            try:
                return self.get(org, entry_id)
            except NotFound:
                continue
        if ids:
            raise NoWorkload(f"base experiment {ids[0]} not found (see jobs:list_base_experiments)")
        query: Doc = {"kind": job.get("kind") or "experiment", **NOT_PUBLISHED}
        if job.get("network_arch"):
            query["network_arch"] = job["network_arch"]
        entries = [entry_of(d) for d in self.visible(org, query)]
        if not entries and job.get("network_arch"):
            entries = [
                entry_of(d) for d in self.visible(org, {"kind": query["kind"], **NOT_PUBLISHED})
            ]
        return pick(entries, job)

    # -- writes --------------------------------------------------------------------------

    def create(self, entry: BaseExperiment) -> Doc:
        now = utcnow()
        doc = {**entry_doc(entry, False, now), "created_on": now, "version": 1}
        try:
            self._coll.insert_one(doc)
        except DuplicateKeyError:
            raise self._duplicate(entry) from None
        return doc

    def _duplicate(self, entry: BaseExperiment) -> DuplicateEntry:
        clash = self._coll.find_one(
            {"scope": entry.scope, "network_arch": entry.network_arch, "name": entry.name},
            {"_id": 1},
        ) or self._coll.find_one({"_id": entry.id}, {"_id": 1})
        return DuplicateEntry(entry, clash["_id"] if clash else entry.id)

    def replace(self, current: BaseExperiment, entry: BaseExperiment) -> Doc:
        """Store the new state of an entry under its old id (an id never changes)."""
        fields = entry_doc(entry, False, utcnow())
        fields["_id"] = current.id
        try:
            found = self._coll.find_one_and_update(
                {"_id": current.id, "scope": current.scope, "builtin": {"$ne": True}},
                {"$set": fields, "$inc": {"version": 1}},
                return_document=True,
            )
        except DuplicateKeyError:
            raise self._duplicate(entry) from None
        if found is None:
            raise NotFound("base experiment", current.id)
        self._cache.pop(current.id, None)
        return found

    def put(self, entry: BaseExperiment) -> tuple[Doc, bool]:
        """Create the entry, or replace the one of the same scope, network_arch and name
        (an import run twice changes nothing the second time). Returns (doc, created)."""
        existing = self._coll.find_one(
            {"scope": entry.scope, "network_arch": entry.network_arch, "name": entry.name}
        )
        if existing is None:
            return self.create(entry), True
        if existing.get("builtin"):
            raise Conflict(
                f"{entry.network_arch}/{entry.name} is a built-in entry; give yours another name"
            )
        return self.replace(entry_of(existing), entry), False

    def users(self, entry: BaseExperiment) -> list[str]:
        """Jobs that have not finished and run this entry."""
        active = [s.value for s in ACTIVE_STATES] + ["Paused"]
        query: Doc = {"catalog_id": entry.id, "status": {"$in": active}}
        if entry.scope != GLOBAL:
            query["org"] = entry.scope
        return sorted(d["_id"] for d in self._jobs.find(query, {"_id": 1}).limit(100))

    def delete(self, entry: BaseExperiment) -> Doc:
        using = self.users(entry)
        if using:
            raise EntryInUse(entry, using)
        doc = self._coll.find_one_and_delete(
            {"_id": entry.id, "scope": entry.scope, "builtin": {"$ne": True}}
        )
        if doc is None:
            raise NotFound("base experiment", entry.id)
        self._cache.pop(entry.id, None)
        return doc

    def forget_entry(self, entry_id: str) -> None:
        self._cache.pop(entry_id, None)

    def forget(self) -> None:
        """Drop what is cached (tests, and after a restore)."""
        self._cache.clear()
