"""Per-org quotas (``max_running_jobs``, ``max_gpus``) and what counts against them.

A job occupies a slot from the moment a dispatcher claims it until it stops being active
(its run ended, or it was paused). Admission counts occupying jobs while holding the org's
Redis lease (``workers.admission``), so two workers can never both take the last slot: the
claim a dispatcher holds is itself counted by the next one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from jobyard.schemas.job import ACTIVE_STATES, JobState
from jobyard.store.guard import guarded
from jobyard.store.jobs import DISPATCHED_FIELDS
from jobyard.store.timeutil import utcnow

Doc = dict[str, Any]
WAITING = [JobState.PENDING.value, JobState.RESUMING.value]
RUNNING = [s.value for s in ACTIVE_STATES if s.value not in WAITING]


def gpus_of(job: Mapping[str, Any]) -> int:
    """GPUs a job asks for: ``backend_details.num_gpus`` (0 when it names none)."""
    return int((job.get("backend_details") or {}).get("num_gpus") or 0)


@guarded
class Quotas:
    def __init__(self, db: Database[Doc]) -> None:
        self._coll = db["quotas"]
        self._jobs = db["jobs"]

    def get(self, org: str) -> Doc:
        found = self._coll.find_one({"_id": org}) or {}
        return {
            "max_running_jobs": found.get("max_running_jobs"),
            "max_gpus": found.get("max_gpus"),
        }

    def set(self, org: str, limits: Mapping[str, int | None]) -> Doc:
        fields = {k: limits.get(k) for k in ("max_running_jobs", "max_gpus")}
        if not self._coll.update_one({"_id": org}, {"$set": fields}).matched_count:
            try:
                self._coll.insert_one({"_id": org, **fields})
            except DuplicateKeyError:
                self._coll.update_one({"_id": org}, {"$set": fields})
        return self.get(org)

    def occupying(self, org: str, but: str, admitted_within: float) -> list[Doc]:
        """The org's jobs holding a slot, ``but`` one: running, submitted, or admitted in
        the last ``admitted_within`` seconds and about to be submitted."""
        fields = {"_id": 1, "backend_details": 1}
        running = self._jobs.find({"org": org, "status": {"$in": RUNNING}}, fields)
        waiting = {"org": org, "status": {"$in": WAITING}}
        submitted = self._jobs.find({**waiting, "submitted": True}, fields)
        since = utcnow() - admitted_within
        admitted = self._jobs.find({**waiting, "admitted_at": {"$gt": since}}, fields)
        found = {d["_id"]: d for cursor in (running, submitted, admitted) for d in cursor}
        found.pop(but, None)
        return list(found.values())

    def admit(self, job_id: str) -> None:
        """The job has its slot: it counts from now, before its run is submitted."""
        self._jobs.update_one({"_id": job_id}, {"$set": {"admitted_at": utcnow()}})

    def waiting(self, org: str, limit: int, admitted_within: float) -> list[Doc]:
        """The org's jobs waiting for a slot (not admitted lately), in the order they get
        one: priority, then age (``priority_rank``: high 2, normal 1, low 0)."""
        query = {"org": org, "status": {"$in": WAITING}, "submitted": False}
        fields = {**DISPATCHED_FIELDS, "admitted_at": 1}
        order = [("priority_rank", DESCENDING), ("created_on", ASCENDING), ("_id", ASCENDING)]
        since = utcnow() - admitted_within
        found: list[Doc] = []
        for doc in self._jobs.find(query, fields).sort(order):
            if len(found) >= limit:
                break
            if float(doc.get("admitted_at") or 0) <= since:
                found.append(doc)
        return found
