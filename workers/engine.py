"""Dispatch, reconcile and tick: the three short, idempotent steps that move
every job through its lifecycle. Celery tasks in ``jobyard.workers.tasks`` are thin
wrappers around these functions."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jobyard.backends.base import (
    Capability,
    Handle,
    Offsets,
    Output,
    RunSpec,
    RunState,
    RunStatus,
)
from jobyard.backends.errors import (
    BackendError,
    BackendUnavailable,
    SubmitRejected,
    UnknownBackend,
    UnsupportedOperation,
)
from jobyard.backends.registry import queue_for
from jobyard.schemas.catalog import NoWorkload
from jobyard.schemas.job import SERVE_ACTION, JobState, StopKind
from jobyard.store.datasets import output_dataset_id
from jobyard.store.errors import StaleState
from jobyard.store.jobs import TickWrite, job_secrets
from jobyard.store.timeutil import utcnow
from jobyard.workers import (
    admission,
    automl,
    enqueue,
    fleet,
    locks,
    serving,
    staging,
    telemetry,
    transfers,
)
from jobyard.workers.context import Context
from jobyard.workers.decide import Decision, decide
from jobyard.workers.ingest import Ingested, ingest
from jobyard.workers.locks import Lease
from jobyard.workers.runspec import run_spec
from jobyard.workers.turns import Turns

logger = logging.getLogger(__name__)


# --- dispatch -------------------------------------------------------------------------


def dispatch(ctx: Context, job_id: str) -> str:
    """Submit the job's current run. Safe to run twice, or after a crash midway:
    the claim keeps two workers apart and the backend finds a run it already
    started by its deterministic name. Datasets that must be copied first are left to
    the stage task, which dispatches the job again when they are in place."""
    job = ctx.store.jobs.claim_dispatch(job_id, ctx.settings.dispatch_lease_seconds)
    if job is None:
        return "skipped"
    # Renewed while it works, so the claim can be short: a worker killed mid-dispatch
    # holds the job up for one lease, not for as long as a slow submit might take.
    with locks.kept(_Claim(ctx, job), ctx.settings.dispatch_lease_seconds):
        return _dispatch_claimed(ctx, job)


def _dispatch_claimed(ctx: Context, job: Mapping[str, Any]) -> str:
    job_id = str(job["_id"])
    attempts = int(job.get("dispatch_attempts") or 0)
    if attempts > ctx.settings.dispatch_attempts:
        fail(
            ctx,
            job_id,
            f"dispatch failed: {attempts - 1} attempts to submit run {job['run']} "
            "died before it was submitted (workers killed or crashing); see the worker log",
        )
        return "failed"
    if job.get("automl_plan"):
        return automl.start(ctx, job)  # a search runs no run of its own: its trials do
    waiting = admission.blocked(ctx, job)
    if waiting is not None:
        ctx.store.jobs.defer(job_id, waiting)
        return "waiting"
    try:
        spec = _run_spec(ctx, job)
        backend = ctx.backend(job["backend"])
        datasets = staging.plan(ctx, job, backend, spec)
        if datasets.copies and job.get("staged_run") != job["run"]:
            if enqueue.stage(ctx.celery, job_id, job["backend"]):
                return "staging"  # the claim stays: the stage task renews it
            ctx.store.jobs.release_claim(job_id)
            return "requeued"
        if datasets.env:
            spec = dataclasses.replace(spec, env={**spec.env, **datasets.env})
        endpoint = None
        if job["action"] == SERVE_ACTION:
            spec, endpoint = serving.placed(backend, spec)
        handle = backend.submit(spec)
        served = serving.recorded(endpoint, handle)
    except BackendUnavailable:
        telemetry.BACKEND_ERRORS.labels(job["backend"], "submit").inc()
        ctx.store.jobs.release_claim(job_id)
        raise  # transient: the task retries with backoff
    except (SubmitRejected, UnknownBackend, UnsupportedOperation) as e:
        logger.warning("job %s: submit refused: %s", job_id, e)
        fail(ctx, job_id, f"submit failed: {e}")
        return "failed"
    # One immediate look, so a run that starts at once shows Running at once (in the same
    # write that records it); anything else is reconcile's to see.
    try:
        status = backend.poll([handle]).get(handle.name)
    except BackendError:
        status = None  # the run is submitted: recording it matters more than its state
    running = status is not None and status.state is RunState.RUNNING
    since = (status.started_at or utcnow()) if running and status is not None else None
    message = f"submitted as {spec.name}"
    recorded = ctx.store.jobs.set_handle(
        job_id, spec.run, handle.to_doc(), message, running_since=since, extra=served
    )
    if running and recorded and spec.run == 1:
        telemetry.SUBMIT_TO_RUNNING.labels(job["backend"]).observe(utcnow() - job["created_on"])
    logger.info("job %s: run %s submitted to %s", job_id, spec.run, job["backend"])
    return "submitted"


class _Claim:
    """The job's dispatch claim as a renewable lease (``locks.kept``)."""

    def __init__(self, ctx: Context, job: Mapping[str, Any]) -> None:
        self._ctx, self._job_id, self._run = ctx, str(job["_id"]), int(job["run"])

    def renew(self, seconds: float | None = None) -> bool:
        lease = seconds or self._ctx.settings.dispatch_lease_seconds
        return self._ctx.store.jobs.renew_claim(self._job_id, self._run, lease)


class _ClaimLease:
    """The job's dispatch claim and the staging lease, renewed together while copying."""

    def __init__(self, ctx: Context, job: Mapping[str, Any], lease: Lease) -> None:
        self._claim, self._lease = _Claim(ctx, job), lease

    def renew(self, seconds: float | None = None) -> bool:
        return self._lease.renew() and self._claim.renew()


def stage(ctx: Context, job_id: str) -> str:
    """Copy the datasets of the job's current run, then dispatch it. One stage task per
    job at a time (a lease); a crash midway leaves the claim to expire and the tick
    dispatches the job again, which starts a new stage task that skips what is copied."""
    lease = ctx.lease(f"stage:{job_id}", ctx.settings.dispatch_lease_seconds)
    if lease is None:
        return "busy"
    try:
        job = ctx.store.jobs.find(job_id)
        if job is None or job.get("submitted") or job.get("staged_run") == job.get("run"):
            return "skipped"
        claim = _ClaimLease(ctx, job, lease)
        if not claim.renew():
            return "skipped"  # canceled meanwhile, or the claim went to another dispatch
        try:
            spec = _run_spec(ctx, job)
            datasets = staging.plan(ctx, job, ctx.backend(job["backend"]), spec)
            staging.copy(ctx, job_id, datasets.copies, claim)
        except BackendUnavailable:
            ctx.store.jobs.release_claim(job_id)
            raise
        except (SubmitRejected, UnknownBackend) as e:
            logger.warning("job %s: staging refused: %s", job_id, e)
            fail(ctx, job_id, f"submit failed: {e}")
            return "failed"
        if ctx.store.jobs.mark_staged(job_id, int(job["run"])):
            enqueue.dispatch_now(ctx.celery, job_id, job["backend"])
        return "staged"
    finally:
        lease.release()


def _run_spec(ctx: Context, job: Mapping[str, Any]) -> RunSpec:
    """What to start, or SubmitRejected saying why this job cannot run (anything else
    raised here is a bug, and is logged with its traceback by the task)."""
    try:
        experiment = ctx.store.catalog.for_job(job)
    except NoWorkload as e:
        raise SubmitRejected(str(e)) from e
    if job["action"] not in experiment.actions:
        raise SubmitRejected(
            f"base experiment {experiment.name} ({experiment.id}) no longer has action "
            f"{job['action']}"
        )
    return run_spec(job, experiment, _parent_handle(ctx, job), job_secrets(ctx.store.cipher, job))


def _parent_handle(ctx: Context, job: Mapping[str, Any]) -> Handle | None:
    parent_id = job.get("parent_job_id")
    if not parent_id:
        return None
    parent = ctx.store.jobs.find(parent_id)
    if parent is None or not parent.get("handle"):
        raise SubmitRejected(f"parent job {parent_id} has no run to read results from")
    return Handle.from_doc(parent["handle"])


def fail(ctx: Context, job_id: str, message: str) -> None:
    _try_transition(
        ctx, job_id, JobState.ERROR, message, {"finished_on": utcnow(), "claim_until": 0.0}
    )


def _try_transition(
    ctx: Context, job_id: str, target: JobState, message: str, changes: Mapping[str, Any]
) -> bool:
    try:
        ctx.store.jobs.transition(
            job_id,
            target,
            {
                **changes,
                "job_details.detailed_status.message": message,
                "job_details.detailed_status.status": target.value,
            },
        )
    except StaleState as e:
        logger.info("job %s: not moved to %s: %s", job_id, target.value, e)
        return False
    return True


# --- reconcile ------------------------------------------------------------------------


def reconcile(ctx: Context, backend_name: str) -> int:
    """One pass over every watched job of one backend: one poll and one output
    read for all of them, whatever their number. Returns jobs looked at."""
    lease = ctx.lease(f"reconcile:{backend_name}", _reconcile_lease(ctx))
    if lease is None:
        return 0
    try:
        with locks.kept(lease, lease.seconds):
            return _reconcile(ctx, backend_name)
    finally:
        lease.release()


def _reconcile_lease(ctx: Context) -> float:
    """Short, and renewed while the pass runs: a worker killed mid-pass holds the backend
    up for seconds, not for as long as a pass might take."""
    return max(ctx.settings.reconcile_interval_seconds * 3, 6.0)


def _reconcile(ctx: Context, backend_name: str) -> int:
    # the runs first, then what steps on them: searches' trials, servers' health checks
    looked = _reconcile_runs(ctx, backend_name)
    return looked + automl.step(ctx, backend_name) + serving.step(ctx, backend_name)


def _reconcile_runs(ctx: Context, backend_name: str) -> int:
    jobs = ctx.store.jobs.watched(backend_name)
    if not jobs:
        return 0
    handles = [Handle.from_doc(job["handle"]) for job in jobs]
    limit = ctx.settings.log_chunk_bytes
    requests = [
        (h, Offsets(j["offsets"]["status"], j["offsets"]["log"]))
        for h, j in zip(handles, jobs, strict=True)
    ]
    try:
        backend = ctx.backend(backend_name)
        statuses = backend.poll(handles)
        outputs = backend.read_output(requests, limit)
    except BackendError as e:
        # Jobs keep their state (the runs may well be fine); users see why nothing moves.
        telemetry.BACKEND_ERRORS.labels(backend_name, "poll").inc()
        logger.warning("reconcile %s: %s", backend_name, e)
        ctx.store.jobs.note_all([j["_id"] for j in jobs], f"cannot reach the backend: {e}")
        return len(jobs)
    ingested = ingest(ctx, jobs, handles, outputs)
    now = utcnow()
    outcome = _Outcome()
    for job, handle in zip(ingested.jobs, handles, strict=True):
        status = statuses.get(handle.name, RunStatus(RunState.LOST, reason="unknown run"))
        if status.state.finished and not _drained(outputs.get(handle.name), limit):
            continue  # finalize once every byte it wrote has been stored
        decision = decide(
            job, status, now, ctx.settings.grace_period_seconds, ctx.settings.node_failure_retries
        )
        _apply(ctx, job, handle, decision, outcome)
    outcome.write(ctx, ingested)
    transfers.schedule(ctx, jobs)  # results to the workspace (workers/transfers.py)
    return len(jobs)


def _drained(output: Output | None, limit: int) -> bool:
    """Every byte the run wrote has been read: only then may a finished run be finalized."""
    return output is None or (
        not output.more and len(output.status) < limit and len(output.log) < limit
    )


@dataclass
class _Outcome:
    """What one reconcile pass decided, written with the pass's output advances in one bulk
    write at its end: state changes (compare-and-set) and messages."""

    moves: dict[str, tuple[JobState, dict[str, Any]]] = field(default_factory=dict)
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, tuple[Mapping[str, Any], Handle]] = field(default_factory=dict)

    def move(self, job: Mapping[str, Any], handle: Handle, decision: Decision) -> None:
        assert decision.target is not None
        changes = dict(decision.changes)
        if decision.target.final or decision.target is JobState.PAUSED:
            changes["finished_on"] = utcnow()
        changes["job_details.detailed_status.message"] = decision.message
        changes["job_details.detailed_status.status"] = decision.target.value
        if decision.target is JobState.DONE and job.get("dataset_output") is not None:
            # the dataset version is in the same write as Done: whoever sees Done sees it
            changes["output_dataset_id"] = output_dataset_id(job["_id"])
        self.moves[job["_id"]] = (decision.target, changes)
        self.jobs[job["_id"]] = (job, handle)

    def note(self, job: Mapping[str, Any], handle: Handle, message: str) -> None:
        shown = ((job.get("job_details") or {}).get("detailed_status") or {}).get("message")
        if message != shown:  # the same words every tick are not worth a write
            self.record(job, handle, {"job_details.detailed_status.message": message})

    def record(self, job: Mapping[str, Any], handle: Handle, changes: dict[str, Any]) -> None:
        """Fields to set while the job is still in the status it was read in."""
        self.notes.setdefault(job["_id"], {}).update(changes)
        self.jobs[job["_id"]] = (job, handle)

    def write(self, ctx: Context, ingested: Ingested) -> None:
        statuses = {j["_id"]: j["status"] for j in ingested.jobs}
        writes = []
        for job_id in {*ingested.advances, *self.moves, *self.notes}:
            target, changes = self.moves.get(job_id, (None, self.notes.get(job_id, {})))
            advance = ingested.advances.get(job_id)
            writes.append(TickWrite(job_id, statuses[job_id], advance, target, changes))
        outputs = [
            self.jobs[job_id][0]
            for job_id, (target, _) in self.moves.items()
            if target is JobState.DONE and self.jobs[job_id][0].get("dataset_output") is not None
        ]
        for job in outputs:  # before Done is written: the id Done names must exist
            _record_dataset(ctx, job)
        landed = ctx.store.jobs.write_tick(writes)
        for job in outputs:
            if job["_id"] not in landed:  # it moved on meanwhile (a cancel): no version
                ctx.store.datasets.discard_output(job)
        ingested.retain(ctx)
        freed: set[str] = set()  # orgs with a slot freed: their next waiting jobs may start
        for job_id, (target, _) in self.moves.items():
            job, handle = self.jobs[job_id]
            if job_id not in landed:
                logger.info("job %s: not moved to %s (it moved on meanwhile)", job_id, target.value)
                continue
            logger.info("job %s: %s -> %s", job_id, job["status"], target.value)
            if target is JobState.RUNNING and job.get("run") == 1:
                seconds = utcnow() - job["created_on"]
                telemetry.SUBMIT_TO_RUNNING.labels(job["backend"]).observe(seconds)
            if target.final or target is JobState.PAUSED:
                ctx.backend(job["backend"]).cleanup(handle)  # a resume is a new run
                freed.add(str(job["org"]))
        for org in sorted(freed):
            admission.admit_next(ctx, org)


def _record_dataset(ctx: Context, job: Mapping[str, Any]) -> None:
    """A dataset job's results become a new dataset version (its entry's ``output_dir``);
    idempotent (its id follows from the job's), whichever reconcile gets here first."""
    dataset = ctx.store.datasets.create_output(job, str(job["dataset_output"]))
    logger.info("job %s: results are dataset %s", job["_id"], dataset["_id"])


def _apply(
    ctx: Context, job: Mapping[str, Any], handle: Handle, decision: Decision, outcome: _Outcome
) -> None:
    job_id = job["_id"]
    if decision.stop:
        backend = ctx.backend(job["backend"])
        graceful = decision.stop is StopKind.GRACEFUL and backend.supports(Capability.GRACEFUL_STOP)
        try:
            backend.stop(handle, graceful=graceful)
        except BackendUnavailable as e:
            telemetry.BACKEND_ERRORS.labels(job["backend"], "stop").inc()
            logger.warning("job %s: stop failed, retrying next tick: %s", job_id, e)
            return
        now = utcnow()
        changes: dict[str, Any] = {"job_details.detailed_status.message": decision.message}
        killed_at = None if graceful else now
        if decision.stop_reason:
            changes["stop"] = {
                "reason": decision.stop_reason.value,
                "sent_at": now,
                "killed_at": killed_at,
            }
        elif killed_at:
            changes["stop.killed_at"] = killed_at
        outcome.record(job, handle, changes)  # written with this tick's output, after it
        logger.info("job %s: %s stop sent (%s)", job_id, decision.stop.value, decision.message)
    if decision.resubmit:
        if ctx.store.jobs.resubmit(
            job_id, job["status"], job["run"], decision.message, decision.counter
        ):
            logger.warning("job %s: %s", job_id, decision.message)
            ctx.backend(job["backend"]).cleanup(handle)
            enqueue.dispatch(ctx.celery, ctx.redis, job)
        return
    if decision.target is not None:
        outcome.move(job, handle, decision)
    elif decision.message and not decision.stop:
        outcome.note(job, handle, decision.message)


# --- tick -----------------------------------------------------------------------------


def _redispatch(ctx: Context) -> int:
    """Dispatch again what MongoDB says waits too long. A job still in its org's line
    waits its turn (a backlog, not a loss), unless its queue holds no message at all (its
    turn went with a worker killed holding it); one in no line lost its entry with Redis,
    or with the worker that took it, and is entered again. Each job at most once per
    ``redispatch_after_seconds`` (``mark_enqueued``), however long the backlog."""
    by_queue: dict[str, list[dict[str, Any]]] = {}
    for job in ctx.store.jobs.unsubmitted(utcnow() - ctx.settings.redispatch_after_seconds):
        if job["status"] == JobState.CANCELING.value:
            changes = {"finished_on": utcnow()}
            _try_transition(
                ctx, job["_id"], JobState.CANCELED, "canceled before it started", changes
            )
        else:
            by_queue.setdefault(queue_for(job["backend"]), []).append(job)
    turns, sent = Turns(ctx.redis), 0
    for queue, waiting in by_queue.items():
        in_line = turns.in_line(queue, waiting) if turns.backlog(queue) else set()
        for job in waiting:
            if job["_id"] not in in_line and ctx.store.jobs.mark_enqueued(
                job["_id"], job["enqueued_at"]
            ):
                sent += enqueue.dispatch(ctx.celery, ctx.redis, job)
    return sent


def tick(ctx: Context) -> dict[str, int]:
    """The periodic heartbeat (one beat; a Redis lease makes a second harmless):
    re-send dispatches MongoDB says are due, and ask each backend with jobs to
    reconcile on its own queue."""
    settings = ctx.settings
    # Never released: it expires, so ticks are at most one per interval however many beats.
    if ctx.lease("tick", settings.reconcile_interval_seconds * 0.9) is None:
        return {"redispatched": 0, "reconciles": 0}
    redispatched = 0
    # Expires unreleased too: one scan per half redispatch age, not one per beat.
    if ctx.lease("redispatch", settings.redispatch_after_seconds / 2) is not None:
        redispatched = _redispatch(ctx)
    fleet.sample(ctx.store, ctx.redis, utcnow())  # at most one sample per interval
    backends = ctx.store.jobs.backends_to_watch()
    for name in backends:
        ctx.celery.send_task(
            enqueue.RECONCILE,
            args=[name],
            queue=queue_for(name),
            expires=max(settings.reconcile_interval_seconds * 3, 5),
        )
    return {"redispatched": redispatched, "reconciles": len(backends)}
