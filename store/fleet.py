"""What the workers report (``workers``: one document per worker, rewritten every few
seconds) and what the tick samples of each queue (``queue_samples``, for seed 004's
``queue_metrics``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from jobyard.schemas.job import JobState
from jobyard.store.guard import guarded

Doc = dict[str, Any]
WAITING = (JobState.PENDING.value, JobState.RESUMING.value)


@guarded
class Fleet:
    def __init__(self, db: Database[Doc]) -> None:
        self._workers = db["workers"]
        self._samples = db["queue_samples"]
        self._jobs = db["jobs"]

    def report(self, worker_id: str, fields: Mapping[str, Any]) -> None:
        """Replace a worker's report (no upsert: nx-27017 mishandles those)."""
        if self._workers.update_one({"_id": worker_id}, {"$set": dict(fields)}).matched_count:
            return
        try:
            self._workers.insert_one({"_id": worker_id, **fields})
        except DuplicateKeyError:  # its previous report landed meanwhile
            self._workers.update_one({"_id": worker_id}, {"$set": dict(fields)})

    def remove(self, worker_id: str) -> None:
        self._workers.delete_one({"_id": worker_id})

    def workers(self) -> list[Doc]:
        return list(self._workers.find().sort("_id", ASCENDING))

    def drop_silent(self, before: float) -> int:
        """Forget workers that last reported before ``before``."""
        return self._workers.delete_many({"last_report_time": {"$lt": before}}).deleted_count

    def waiting(self, org: str | None = None) -> list[Doc]:
        """Jobs waiting for a run, oldest first (the next one first)."""
        query: Doc = {"status": {"$in": list(WAITING)}}
        if org is not None:
            query["org"] = org
        fields = {"_id": 1, "org": 1, "backend": 1, "enqueued_at": 1, "status": 1}
        return list(self._jobs.find(query, fields).sort("enqueued_at", ASCENDING))

    def record(self, samples: Sequence[Mapping[str, Any]]) -> None:
        if samples:
            self._samples.insert_many([dict(s) for s in samples])

    def samples(self, queue: str, start: float, end: float) -> list[Doc]:
        query = {"queue": queue, "at": {"$gte": start, "$lt": end}}
        return list(self._samples.find(query, {"_id": 0}).sort("at", ASCENDING))

    def trim_samples(self, before: float) -> None:
        self._samples.delete_many({"at": {"$lt": before}})

    def last_sample_at(self) -> float:
        found = list(self._samples.find({}, {"at": 1}).sort("at", DESCENDING).limit(1))
        return float(found[0]["at"]) if found else 0.0
