"""The job document: every field the store keeps for a job, typed, and built in one place.

Client fields (what ``POST /jobs`` accepted: kind, action, specs, workspace ...) sit next
to the engine's own (``handle``, ``offsets``, ``claim_until`` ...); ``store.jobs.public``
shows clients only theirs.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, TypedDict, cast

from jobyard.schemas.job import JobState
from jobyard.store.timeutil import utcnow


class Offsets(TypedDict):
    status: int  # bytes of the run's status file stored as events
    log: int  # bytes of the run's log stored
    status_lines: int  # lines of the status file consumed (numbers events without a seq)


class Stop(TypedDict):
    reason: str  # schemas.job.StopReason
    sent_at: float
    killed_at: float | None


class JobDoc(TypedDict, total=False):
    _id: str
    org: str
    user_id: str
    fingerprint: str  # unique per org: duplicate prevention
    backend: str  # the backend target (backends.registry)
    status: str  # schemas.job.JobState
    active: bool  # status is one of ACTIVE_STATES: what the tick and reconcile look for
    run: int  # 1, then +1 per resume or resubmission
    handle: dict[str, Any] | None  # how the backend finds the current run
    submitted: bool  # the current run has a handle
    claim_until: float  # a dispatch owns the submit of the current run until then
    dispatch_attempts: int  # claims since the last submit: capped
    staged_run: int  # the run whose datasets are in place
    enqueued_at: float  # when a dispatch was last asked for
    offsets: Offsets
    log_bytes: int
    events_stored: int
    series: dict[str, dict[str, list[float]]]  # metric -> {"x": epochs, "y": values}
    job_details: dict[str, Any]  # seed 002's result block
    requested: str | None  # schemas.job.Request
    stop: Stop | None
    node_failures: int
    created_on: float
    last_modified: float
    started_on: float | None
    finished_on: float | None
    artifacts: dict[str, Any]
    # from the catalog entry when the job was created
    catalog_id: str  # the base experiment it runs (a non-finished job keeps it from deletion)
    status_protocol: str  # jobyard | tao: how its status lines are read
    parent_checkpoint: str | None  # chosen from the parent's results (checkpoint_choose_method)
    # the user's secrets, encrypted together: encryption_key, docker_env_vars values
    secrets_enc: str | None
    docker_env_vars: dict[str, str]  # names -> the mask; the values are in secrets_enc


def state(target: JobState) -> dict[str, Any]:
    """The fields of a state change: every write of ``status`` goes through here, so
    ``active`` never disagrees with it. The periodic queries select on ``active``: one
    indexed equality, whatever the number of finished jobs (nx-27017 scans a ``$in`` over
    states; on MongoDB the equality is as good an index as the states' ranges)."""
    return {"status": target.value, "active": target.active}


def fresh_offsets() -> Offsets:
    return {"status": 0, "log": 0, "status_lines": 0}


def new_job(
    org: str, user_id: str, fields: Mapping[str, Any], backend: str, fingerprint: str
) -> JobDoc:
    """A Pending job, as ``store.jobs.create`` inserts it."""
    now = utcnow()
    doc: dict[str, Any] = {
        "fingerprint": fingerprint,
        "_id": str(uuid.uuid4()),
        "org": org,
        "user_id": user_id,
        "backend": backend,
        **state(JobState.PENDING),
        "run": 1,
        "handle": None,
        "submitted": False,
        "claim_until": 0.0,
        "offsets": fresh_offsets(),
        "log_bytes": 0,
        "job_details": {"detailed_status": {"message": "waiting for a worker", "status": ""}},
        "series": {},
        "created_on": now,
        "last_modified": now,
        "enqueued_at": now,
        "dispatch_attempts": 0,
    }
    return cast(JobDoc, {**fields, **doc})


def next_run(run: int, message: str) -> dict[str, Any]:
    """The changes that start run ``run + 1`` of a job (resume, resubmission): fresh
    offsets and handle; events and logs of earlier runs stay (they are keyed by run)."""
    now = utcnow()
    return {
        **state(JobState.RESUMING),
        "run": run + 1,
        "handle": None,
        "submitted": False,
        "claim_until": 0.0,
        "dispatch_attempts": 0,
        "offsets": fresh_offsets(),
        "stop": None,
        "requested": None,
        "started_on": None,
        "finished_on": None,
        "enqueued_at": now,
        "last_modified": now,
        "job_details.detailed_status.message": message,
    }
