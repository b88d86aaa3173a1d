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


def _limits(found: Mapping[str, Any]) -> Doc:
    return {k: found.get(k) for k in ("max_running_jobs", "max_gpus")}


def _target(entry: Mapping[str, Any]) -> Doc:
    return {"backend": str(entry["backend"]), **_limits(entry)}


def limits_for(quota: Mapping[str, Any], backend: str) -> Doc:
    """The limits a job on ``backend`` must also fit, beside the org's (none: unlimited)."""
    for entry in quota.get("backends") or []:
        if entry["backend"] == backend:
            return _limits(entry)
    return {"max_running_jobs": None, "max_gpus": None}


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
            "backends": [_target(entry) for entry in found.get("backends") or []],
        }

    def set(self, org: str, limits: Mapping[str, Any]) -> Doc:
        """Set the org's limits; ``backends``, when given, replaces the per-target list."""
        fields: Doc = _limits(limits)
        if limits.get("backends") is not None:
            fields["backends"] = [_target(entry) for entry in limits["backends"]]
        if not self._coll.update_one({"_id": org}, {"$set": fields}).matched_count:
            try:
                self._coll.insert_one({"_id": org, **fields})
            except DuplicateKeyError:
                self._coll.update_one({"_id": org}, {"$set": fields})
        return self.get(org)

    def occupying(self, org: str, but: str, admitted_within: float) -> list[Doc]:
        """The org's jobs holding a slot, ``but`` one: running, submitted, or admitted in
        the last ``admitted_within`` seconds and about to be submitted. One query: a job
        moving from admitted to running between two queries would be in neither."""
        waiting = {"status": {"$in": WAITING}}
        since = utcnow() - admitted_within
        query = {
            "org": org,
            "$or": [
                {"status": {"$in": RUNNING}},
                {**waiting, "submitted": True},
                {**waiting, "admitted_at": {"$gt": since}},
            ],
        }
        fields = {"_id": 1, "backend": 1, "backend_details": 1, "automl_plan": 1}
        # a search holds no slot of its own: each of its trials holds one
        found = self._jobs.find(query, fields)
        return [
            {k: v for k, v in d.items() if k != "automl_plan"}
            for d in found
            if d["_id"] != but and "automl_plan" not in d
        ]

    def admit(self, job_id: str) -> None:
        """The job has its slot: it counts from now, before its run is submitted."""
        self._jobs.update_one({"_id": job_id}, {"$set": {"admitted_at": utcnow()}})

    def waiting(
        self, org: str, limit: int, admitted_within: float, backend: str | None = None
    ) -> list[Doc]:
        """The org's jobs waiting for a slot (not admitted lately; on ``backend`` only, if
        given), in the order they get one: priority, then age (``priority_rank``: high 2,
        normal 1, low 0)."""
        query: Doc = {"org": org, "status": {"$in": WAITING}, "submitted": False}
        if backend is not None:
            query["backend"] = backend
        fields = {**DISPATCHED_FIELDS, "admitted_at": 1, "backend_details": 1}
        order = [("priority_rank", DESCENDING), ("created_on", ASCENDING), ("_id", ASCENDING)]
        since = utcnow() - admitted_within
        found: list[Doc] = []
        for doc in self._jobs.find(query, fields).sort(order):
            if len(found) >= limit:
                break
            if float(doc.get("admitted_at") or 0) <= since:
                found.append(doc)
        return found
