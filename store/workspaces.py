"""Workspaces: where datasets are read and results written.

Documents keep the shown part of ``cloud_specific_details`` in clear and the
credentials in ``secrets_enc`` (Fernet). Reads return a ``Workspace`` whose
``details`` is masked; only ``credentials()`` decrypts, for backends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from jobyard.schemas.cloud import mask, merge_details, normalise, patch_details, split_details
from jobyard.schemas.job import ACTIVE_STATES
from jobyard.schemas.workspace import WorkspaceConfig
from jobyard.store.crypto import Cipher
from jobyard.store.errors import Conflict, Duplicate, NotFound
from jobyard.store.fingerprint import fingerprint, forced
from jobyard.store.guard import guarded
from jobyard.store.paging import Page, count, fetch_page
from jobyard.store.timeutil import utcnow


@dataclass(frozen=True)
class Workspace:
    id: str
    org: str
    user_id: str
    name: str
    shared: bool
    version: str
    cloud_type: str
    cloud_specific_details: dict[str, Any]  # masked
    created_on: float
    last_modified: float


@guarded
class Workspaces:
    def __init__(self, db: Database[dict[str, Any]], cipher: Cipher) -> None:
        self._coll = db["workspaces"]
        self._jobs = db["jobs"]
        self._catalog = db["catalog"]  # published models keep files in a workspace
        self._cipher = cipher

    def _to_model(self, doc: Mapping[str, Any]) -> Workspace:
        secret = self._cipher.decrypt(doc["secrets_enc"]) if doc.get("secrets_enc") else {}
        return Workspace(
            id=doc["_id"],
            org=doc["org"],
            user_id=doc["user_id"],
            name=doc["name"],
            shared=doc.get("shared", False),
            version=doc.get("version", ""),
            cloud_type=doc["cloud_type"],
            cloud_specific_details=mask(doc.get("cloud_specific_details", {}), secret),
            created_on=doc["created_on"],
            last_modified=doc["last_modified"],
        )

    def _detail_fields(self, cloud_type: str, details: Mapping[str, Any]) -> dict[str, Any]:
        public, secret = split_details(cloud_type, normalise(cloud_type, details))
        return {
            "cloud_specific_details": public,
            "secrets_enc": self._cipher.encrypt(secret) if secret else None,
        }

    def create(
        self, org: str, user_id: str, fields: Mapping[str, Any], force: bool = False
    ) -> Workspace:
        """Insert a workspace; ``Duplicate`` if an identical one exists and not ``force``."""
        now = utcnow()
        identity = {k: fields.get(k) for k in ("name", "cloud_type", "cloud_specific_details")}
        key = self._cipher.key_text
        doc = {
            "fingerprint": forced() if force else fingerprint("workspace", identity, key),
            "_id": str(uuid.uuid4()),
            "org": org,
            "user_id": user_id,
            "name": fields["name"],
            "shared": fields.get("shared", False),
            "version": fields.get("version", ""),
            "cloud_type": fields["cloud_type"],
            **self._detail_fields(fields["cloud_type"], fields.get("cloud_specific_details", {})),
            "created_on": now,
            "last_modified": now,
        }
        try:
            self._coll.insert_one(doc)
        except DuplicateKeyError:
            existing = self._coll.find_one({"org": org, "fingerprint": doc["fingerprint"]})
            raise Duplicate("workspace", existing["_id"] if existing else "?") from None
        return self._to_model(doc)

    def _raw(self, org: str, workspace_id: str) -> dict[str, Any]:
        doc = self._coll.find_one({"_id": workspace_id, "org": org})
        if doc is None:
            raise NotFound("workspace", workspace_id)
        return doc

    def get(self, org: str, workspace_id: str) -> Workspace:
        return self._to_model(self._raw(org, workspace_id))

    def credentials(self, org: str, workspace_id: str) -> dict[str, Any]:
        """Full, decrypted details: for backends and storage adapters only."""
        doc = self._raw(org, workspace_id)
        secret = self._cipher.decrypt(doc["secrets_enc"]) if doc.get("secrets_enc") else {}
        return merge_details(doc.get("cloud_specific_details", {}), secret)

    def config(self, org: str, workspace_id: str) -> WorkspaceConfig:
        """The workspace of ``org`` as backends and storage see it (NotFound otherwise)."""
        return self._config(self._raw(org, workspace_id))

    def for_backend(self, workspace_id: str) -> WorkspaceConfig:
        """The workspace a job names, for a worker building its backend or storage.

        No org check: the job naming this workspace was checked against its org when it was
        created, and the worker acts for that job only.
        """
        doc = self._coll.find_one({"_id": workspace_id})
        if doc is None:
            raise NotFound("workspace", workspace_id)
        return self._config(doc)

    def _config(self, doc: Mapping[str, Any]) -> WorkspaceConfig:
        secret = self._cipher.decrypt(doc["secrets_enc"]) if doc.get("secrets_enc") else {}
        details = merge_details(doc.get("cloud_specific_details", {}), secret)
        return WorkspaceConfig(
            doc["_id"], doc["org"], doc["cloud_type"], float(doc["last_modified"]), details
        )

    def merged_update(
        self, org: str, workspace_id: str, fields: Mapping[str, Any], *, partial: bool
    ) -> dict[str, Any]:
        """The whole workspace as it would be after PUT (partial=False) or PATCH.

        Credentials sent back masked keep their stored value; PATCH merges
        details, PUT replaces them. The caller validates the result before
        calling ``replace``, so a rejected update changes nothing.
        """
        doc = self._raw(org, workspace_id)
        current = self.credentials(org, workspace_id)
        merged = {
            "name": doc["name"],
            "shared": doc.get("shared", False),
            "version": doc.get("version", ""),
            "cloud_type": doc["cloud_type"],
        }
        merged.update({k: v for k, v in fields.items() if k != "cloud_specific_details"})
        new_details = fields.get("cloud_specific_details")
        if merged["cloud_type"] != doc["cloud_type"]:
            current = {}  # credentials never carry over to another kind of cloud
        if new_details is None:
            details = current if partial else {}
        elif partial:
            details = patch_details(current, new_details)
        else:
            kept = {k: current[k] for k in new_details if k in current}
            details = patch_details(kept, new_details)
        merged["cloud_specific_details"] = details
        return merged

    def replace(self, org: str, workspace_id: str, fields: Mapping[str, Any]) -> Workspace:
        update = {
            "name": fields["name"],
            "shared": fields.get("shared", False),
            "version": fields.get("version", ""),
            "cloud_type": fields["cloud_type"],
            **self._detail_fields(fields["cloud_type"], fields["cloud_specific_details"]),
            "last_modified": utcnow(),
        }
        current = self._raw(org, workspace_id)
        if not str(current.get("fingerprint", "")).startswith("forced-"):
            identity = {k: fields.get(k) for k in ("name", "cloud_type", "cloud_specific_details")}
            update["fingerprint"] = fingerprint("workspace", identity, self._cipher.key_text)
        try:
            doc = self._coll.find_one_and_update(
                {"_id": workspace_id, "org": org},
                {"$set": update},
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            doc = None  # MongoDB raises; nx-27017 returns None instead: both land here
        if doc is None and "fingerprint" in update:
            clash = self._coll.find_one(
                {"org": org, "fingerprint": update["fingerprint"], "_id": {"$ne": workspace_id}},
                {"_id": 1},
            )
            if clash:
                raise Duplicate("workspace", clash["_id"])
        if doc is None:
            raise NotFound("workspace", workspace_id)
        return self._to_model(doc)

    def delete(self, org: str, workspace_id: str) -> Workspace:
        """Refused while active jobs name the workspace: their runs are reached, and their
        results copied, through it (a SLURM or Lepton job would be stranded)."""
        self._raw(org, workspace_id)  # NotFound first
        active = [s.value for s in ACTIVE_STATES]
        query = {"org": org, "workspace": workspace_id, "status": {"$in": active}}
        using = sorted(d["_id"] for d in self._jobs.find(query, {"_id": 1}))
        if using:
            shown = ", ".join(using[:5]) + (" ..." if len(using) > 5 else "")
            raise Conflict(
                f"workspace {workspace_id} is used by active jobs ({shown}); "
                "cancel them or wait until they finish"
            )
        models = self._models(org, workspace_id)
        if models:
            raise Conflict(
                f"workspace {workspace_id} holds the files of published models "
                f"({', '.join(models[:5])}); remove them first (:remove_published_model)"
            )
        doc = self._coll.find_one_and_delete({"_id": workspace_id, "org": org})
        if doc is None:
            raise NotFound("workspace", workspace_id)
        return self._to_model(doc)

    def _models(self, org: str, workspace_id: str) -> list[str]:
        query = {"scope": org, "published": True, "model_workspace": workspace_id}
        return sorted(d["_id"] for d in self._catalog.find(query, {"_id": 1}).limit(100))

    def of_types(self, org: str, cloud_types: Iterable[str]) -> list[tuple[str, str]]:
        """(cloud type, id) of the org's workspaces of these cloud types, oldest first."""
        query = {"org": org, "cloud_type": {"$in": sorted(set(cloud_types))}}
        fields = {"_id": 1, "cloud_type": 1}
        cursor = self._coll.find(query, fields).sort([("created_on", 1), ("_id", 1)])
        return [(str(doc["cloud_type"]), str(doc["_id"])) for doc in cursor]

    def list(self, org: str, page: Page) -> tuple[list[Workspace], dict[str, int]]:
        docs, info = fetch_page(self._coll, {"org": org}, page)
        return [self._to_model(d) for d in docs], info

    def count(self, org: str, page: Page) -> int:
        return count(self._coll, page.query({"org": org}))
