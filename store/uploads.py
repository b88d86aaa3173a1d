"""What of each job's results has been copied to its workspace: one document per file
(size and modification time as uploaded), so a later copy sends only what changed and a
copy interrupted midway is simply redone."""

from __future__ import annotations

from typing import Any

from pymongo.database import Database

from jobyard.store.guard import guarded

COLLECTION = "job_uploads"


@guarded
class Uploads:
    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self._coll = db[COLLECTION]

    def uploaded(self, job_id: str) -> dict[str, tuple[int, float]]:
        """``{path: (size, modified)}`` of the files already in the workspace."""
        found = self._coll.find({"job_id": job_id})
        return {d["path"]: (int(d["size"]), float(d["modified"])) for d in found}

    def record(self, job_id: str, org: str, path: str, size: int, modified: float) -> None:
        key = f"{job_id}:{path}"
        doc = {"job_id": job_id, "org": org, "path": path, "size": size, "modified": modified}
        # _id in the replacement too: MongoDB takes it from the filter, nx-27017 would upsert
        # a fresh ObjectId on every call (a new document each time)
        self._coll.replace_one({"_id": key}, {"_id": key, **doc}, upsert=True)
