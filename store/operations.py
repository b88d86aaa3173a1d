"""Maintenance operations (backup, restore): one document each, so their
progress can be polled and a redelivered task finds the work already taken.

The collection is left out of backups and restores: an operation must not
overwrite the record of itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from pymongo import DESCENDING, ReturnDocument
from pymongo.database import Database

from jobyard.schemas.maintenance import OperationState
from jobyard.store.errors import NotFound
from jobyard.store.guard import guarded
from jobyard.store.timeutil import utcnow

COLLECTION = "maintenance_ops"
Doc = dict[str, Any]


def public(doc: Mapping[str, Any]) -> Doc:
    out = {k: v for k, v in doc.items() if k not in {"_id", "lease_until"}}
    out["id"] = doc["_id"]
    return out


@guarded
class Operations:
    def __init__(self, db: Database[Doc]) -> None:
        self._coll = db[COLLECTION]

    def create(self, org: str, user_id: str, action: str, workspace: str, file_name: str) -> Doc:
        now = utcnow()
        doc: Doc = {
            "_id": str(uuid.uuid4()),
            "org": org,
            "user_id": user_id,
            "action": action,
            "workspace": workspace,
            "backup_file_name": file_name,
            "status": OperationState.PENDING.value,
            "message": "waiting for a maintenance worker",
            "progress": {},
            "created_on": now,
            "last_modified": now,
            "started_on": None,
            "finished_on": None,
            "lease_until": 0.0,
        }
        self._coll.insert_one(doc)
        return doc

    def get(self, org: str, op_id: str) -> Doc:
        doc = self._coll.find_one({"_id": op_id, "org": org})
        if doc is None:
            raise NotFound("operation", op_id)
        return doc

    def latest(self, org: str, workspace: str, action: str) -> Doc:
        docs = list(
            self._coll.find({"org": org, "workspace": workspace, "action": action})
            .sort("created_on", DESCENDING)
            .limit(1)
        )
        if not docs:
            raise NotFound(f"{action} of workspace", workspace)
        return docs[0]

    def claim(self, op_id: str, lease_seconds: float) -> Doc | None:
        """Take a Pending operation, or a Running one whose worker stopped renewing."""
        now = utcnow()
        return self._coll.find_one_and_update(
            {
                "_id": op_id,
                "$or": [
                    {"status": OperationState.PENDING.value},
                    {"status": OperationState.RUNNING.value, "lease_until": {"$lt": now}},
                ],
            },
            {
                "$set": {
                    "status": OperationState.RUNNING.value,
                    "started_on": now,
                    "last_modified": now,
                    "lease_until": now + lease_seconds,
                    "message": "started",
                }
            },
            return_document=ReturnDocument.AFTER,
        )

    def progress(self, op_id: str, progress: Mapping[str, Any], lease_seconds: float) -> None:
        now = utcnow()
        self._coll.update_one(
            {"_id": op_id, "status": OperationState.RUNNING.value},
            {
                "$set": {
                    "progress": dict(progress),
                    "last_modified": now,
                    "lease_until": now + lease_seconds,
                }
            },
        )

    def finish(
        self, op_id: str, status: OperationState, message: str, progress: Mapping[str, Any]
    ) -> None:
        now = utcnow()
        self._coll.update_one(
            {"_id": op_id},
            {
                "$set": {
                    "status": status.value,
                    "message": message,
                    "progress": dict(progress),
                    "finished_on": now,
                    "last_modified": now,
                    "lease_until": 0.0,
                }
            },
        )
