"""Datasets: where a data set lives (a workspace path or a URL) and what it is.

Duplicate prevention uses the same (org, fingerprint) unique index as jobs
and workspaces. ``client_secret`` (an annotation service's) is encrypted like
workspace credentials and shown masked.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from jobyard.schemas import staging
from jobyard.schemas.cloud import MASK
from jobyard.schemas.dataset import JOB_DATASET_FIELDS, referenced_ids
from jobyard.schemas.job import ACTIVE_STATES
from jobyard.store.crypto import Cipher
from jobyard.store.errors import Conflict, Duplicate, NotFound
from jobyard.store.fingerprint import fingerprint, forced
from jobyard.store.guard import guarded
from jobyard.store.paging import Page, count, fetch_page
from jobyard.store.timeutil import utcnow

Doc = dict[str, Any]
IDENTITY = ("name", "type", "format", "workspace", "cloud_file_path", "url", "use_for")
SERVER_FIELDS = frozenset({"user_id", "status", "force_create", "client_secret"})
INTERNAL = frozenset({"_id", "org", "fingerprint", "secrets_enc"})
_OUTPUTS = uuid.UUID("0b7e9f3a-2f4c-4d8e-9a61-6a6f62796172")


def output_dataset_id(job_id: str) -> str:
    """The id of the dataset a dataset job's results become."""
    return str(uuid.uuid5(_OUTPUTS, job_id))


def public(doc: Mapping[str, Any], jobs: Mapping[str, Any] | None = None) -> Doc:
    """The wire view: id instead of _id, the client secret masked."""
    out = {k: v for k, v in doc.items() if k not in INTERNAL}
    for key in ("workspace", "cloud_file_path", "url"):
        out.setdefault(key, None)  # where the data is: always shown, even when unset
    out["id"] = doc["_id"]
    out["client_secret"] = MASK if doc.get("secrets_enc") else None
    out.setdefault("actions", [])
    out["jobs"] = dict(jobs or {})
    return out


class DatasetInUse(Conflict):
    def __init__(self, dataset_id: str, job_ids: list[str]) -> None:
        shown = ", ".join(job_ids[:5]) + (" ..." if len(job_ids) > 5 else "")
        super().__init__(
            f"dataset {dataset_id} is used by active jobs ({shown}); "
            "cancel them or wait until they finish"
        )
        self.job_ids = job_ids


@guarded
class Datasets:
    def __init__(self, db: Database[Doc], cipher: Cipher) -> None:
        self._coll = db["datasets"]
        self._jobs = db["jobs"]
        self._cipher = cipher

    def _fields(self, fields: Mapping[str, Any]) -> Doc:
        out = {k: v for k, v in fields.items() if k not in SERVER_FIELDS}
        secret = fields.get("client_secret")
        if secret == MASK:
            secret = None
        out["secrets_enc"] = self._cipher.encrypt({"client_secret": secret}) if secret else None
        return out

    def _fingerprint(self, fields: Mapping[str, Any]) -> str:
        identity = {k: fields.get(k) for k in IDENTITY}
        return fingerprint("dataset", identity, self._cipher.key_text)

    def create(
        self, org: str, user_id: str, fields: Mapping[str, Any], status: str, force: bool
    ) -> Doc:
        """Insert a dataset; ``Duplicate`` if an identical one exists and not ``force``."""
        now = utcnow()
        doc: Doc = {
            **self._fields(fields),
            "fingerprint": forced() if force else self._fingerprint(fields),
            "_id": str(uuid.uuid4()),
            "org": org,
            "user_id": user_id,
            "status": status,
            "created_on": now,
            "last_modified": now,
        }
        try:
            self._coll.insert_one(doc)
        except DuplicateKeyError:
            existing = self._coll.find_one({"org": org, "fingerprint": doc["fingerprint"]})
            raise Duplicate("dataset", existing["_id"] if existing else "?") from None
        return doc

    def create_output(self, job: Mapping[str, Any], path: str) -> Doc:
        """The dataset a Done dataset job's results became: a new version of the dataset it
        read (or a first version, read from a URI), whose data is ``path`` under the job's
        results. Idempotent: its id follows from the job's, so a second call finds it."""
        dataset_id = output_dataset_id(job["_id"])
        found = self._coll.find_one({"_id": dataset_id})
        if found is not None:
            return found
        sources = [s.value for s in staging.sources(job) if s.kind == "dataset"]
        base = self._coll.find_one({"_id": sources[0], "org": job["org"]}) if sources else None
        version = str(base.get("version") or "1") if base else "0"
        now = utcnow()
        doc: Doc = {
            "_id": dataset_id,
            "org": job["org"],
            "user_id": job.get("user_id"),
            "name": (base or {}).get("name") or job.get("name") or f"{job['action']} output",
            "description": f"{job['action']} of job {job['_id']}",
            "type": job.get("dataset_type") or (base or {}).get("type"),
            "format": job.get("dataset_format") or (base or {}).get("format"),
            "version": str(int(version) + 1) if version.isdigit() else "1",
            "derived_from": (base or {}).get("_id"),
            "source_job": {"job_id": job["_id"], "path": path, "action": job["action"]},
            "workspace": job.get("workspace"),
            "cloud_file_path": None,
            "url": None,
            "status": "pull_complete",
            "fingerprint": forced(),
            "created_on": now,
            "last_modified": now,
        }
        try:
            self._coll.insert_one(doc)
        except DuplicateKeyError:
            return self._coll.find_one({"_id": dataset_id}) or doc
        return doc

    def discard_output(self, job: Mapping[str, Any]) -> None:
        """Remove the version ``create_output`` made for a job that did not end Done after
        all, unless the job is Done by now (another pass got there)."""
        current = self._jobs.find_one({"_id": job["_id"]}, {"status": 1})
        if current is None or current.get("status") != "Done":
            self._coll.delete_one({"_id": output_dataset_id(job["_id"])})

    def get(self, org: str, dataset_id: str) -> Doc:
        doc = self._coll.find_one({"_id": dataset_id, "org": org})
        if doc is None:
            raise NotFound("dataset", dataset_id)
        return doc

    def secret(self, doc: Mapping[str, Any]) -> str | None:
        if not doc.get("secrets_enc"):
            return None
        value = self._cipher.decrypt(doc["secrets_enc"]).get("client_secret")
        return str(value) if value else None

    def list_page(self, org: str, page: Page) -> tuple[list[Doc], dict[str, int]]:
        return fetch_page(self._coll, {"org": org}, page)

    def count(self, org: str, page: Page) -> int:
        return count(self._coll, page.query({"org": org}))

    def replace(self, org: str, dataset_id: str, fields: Mapping[str, Any], status: str) -> Doc:
        """Store the whole new state of a dataset (PUT, or PATCH after merging)."""
        current = self.get(org, dataset_id)
        kept = {k: current[k] for k in ("_id", "org", "user_id", "created_on")}
        if current.get("secrets_enc") and fields.get("client_secret") in (MASK, None):
            secret = self.secret(current) if fields.get("client_secret") == MASK else None
            fields = {**fields, "client_secret": secret}
        doc: Doc = {**kept, **self._fields(fields), "status": status, "last_modified": utcnow()}
        forced_before = str(current.get("fingerprint", "")).startswith("forced-")
        doc["fingerprint"] = current["fingerprint"] if forced_before else self._fingerprint(fields)
        try:
            found = self._coll.find_one_and_replace(
                {"_id": dataset_id, "org": org}, doc, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError:
            found = None  # MongoDB raises; nx-27017 returns None instead: both land here
        if found is None:
            clash = self._coll.find_one(
                {"org": org, "fingerprint": doc["fingerprint"], "_id": {"$ne": dataset_id}},
                {"_id": 1},
            )
            if clash:
                raise Duplicate("dataset", clash["_id"])
            raise NotFound("dataset", dataset_id)
        return found

    def users(self, org: str, dataset_id: str) -> dict[str, Doc]:
        """Active jobs naming this dataset, by id (few per org: checked in Python,
        which also avoids array queries the MongoDB-wire double gets wrong)."""
        projection = {k: 1 for k in (*JOB_DATASET_FIELDS, "status", "action", "name")}
        active = [s.value for s in ACTIVE_STATES]
        found = {}
        for job in self._jobs.find({"org": org, "status": {"$in": active}}, projection):
            if dataset_id in referenced_ids(job):
                found[job["_id"]] = {k: job.get(k) for k in ("name", "action", "status")}
        return found

    def delete(self, org: str, dataset_id: str) -> Doc:
        self.get(org, dataset_id)  # NotFound first
        using = self.users(org, dataset_id)
        if using:
            raise DatasetInUse(dataset_id, sorted(using))
        doc = self._coll.find_one_and_delete({"_id": dataset_id, "org": org})
        if doc is None:
            raise NotFound("dataset", dataset_id)
        return doc
