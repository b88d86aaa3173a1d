"""Status events, stored exactly once.

Each event's ``_id`` is (job, run, seq), so re-reading a status file after a
crash inserts nothing twice. Events are separate documents (not a growing
array inside the job) and capped per job by a retention setting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from jobyard.store.guard import guarded
from jobyard.store.paging import count

DUPLICATE_KEY = 11000


def event_id(job_id: str, run: int, seq: int) -> str:
    return f"{job_id}:{run:04d}:{seq:09d}"


@guarded
class Events:
    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self._coll = db["job_events"]

    def ingest_many(
        self, batch: Sequence[tuple[str, str, int, Sequence[Mapping[str, Any]]]]
    ) -> int:
        """Insert the events of many (job, org, run) in one round trip; events
        already stored are skipped. Returns how many were new."""
        docs = [
            {
                **event,
                "_id": event_id(job_id, run, int(event["seq"])),
                "job_id": job_id,
                "org": org,
                "run": run,
            }
            for job_id, org, run, events in batch
            for event in events
        ]
        if not docs:
            return 0
        try:
            return len(self._coll.insert_many(docs, ordered=False).inserted_ids)
        except BulkWriteError as e:
            errors = e.details.get("writeErrors", [])
            if any(err.get("code") != DUPLICATE_KEY for err in errors):
                raise
            return int(e.details.get("nInserted", 0))

    def list_for_job(
        self,
        org: str,
        job_id: str,
        run: int | None = None,
        after_seq: int | None = None,
        limit: int = 10_000,
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"org": org, "job_id": job_id}
        if run is not None:
            query["run"] = run
            if after_seq is not None:
                query["seq"] = {"$gt": after_seq}
        cursor = self._coll.find(query, {"_id": 0, "org": 0}).sort(
            [("run", ASCENDING), ("seq", ASCENDING)]
        )
        return list(cursor.limit(limit))

    def of_type(self, org: str, job_ids: list[str], kind: str) -> list[dict[str, Any]]:
        """One kind of event (``scalar``, ``plot`` ...) of some jobs, in run and seq order,
        without the fields curves do not need."""
        query: dict[str, Any] = {"org": org, "job_id": {"$in": job_ids}, "type": kind}
        fields = {"_id": 0, "org": 0, "message": 0}
        cursor = self._coll.find(query, fields).sort(
            [("job_id", ASCENDING), ("run", ASCENDING), ("seq", ASCENDING)]
        )
        return list(cursor)

    def trim(self, job_id: str, keep: int) -> int:
        """Drop the oldest events beyond ``keep`` for one job."""
        if count(self._coll, {"job_id": job_id}) <= keep:
            return 0
        cutoff = list(
            self._coll.find({"job_id": job_id}, {"_id": 1})
            .sort([("run", DESCENDING), ("seq", DESCENDING)])
            .skip(keep)
            .limit(1)
        )
        if not cutoff:
            return 0
        result = self._coll.delete_many({"job_id": job_id, "_id": {"$lte": cutoff[0]["_id"]}})
        return result.deleted_count

    def delete_job(self, job_id: str) -> None:
        self._coll.delete_many({"job_id": job_id})
