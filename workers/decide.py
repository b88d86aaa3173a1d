"""The job state machine as one pure function: given what the store says and
what the backend reports, what should happen now. Reconcile applies the
answer with compare-and-set writes, so a stale decision changes nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jobyard.backends.base import RunState, RunStatus
from jobyard.schemas.job import SERVE_ACTION, JobState, Request, StopKind, StopReason


@dataclass(frozen=True)
class Decision:
    target: JobState | None = None  # a state change to make
    message: str = ""  # detailed_status message to show
    stop: StopKind | None = None  # signal the run
    stop_reason: StopReason | None = None  # recorded with the first stop signal
    changes: Mapping[str, Any] = field(default_factory=dict)
    resubmit: bool = False  # with target RESUMING: start run + 1 from the checkpoint
    counter: str = "node_failures"  # what a resubmission counts


def _finished(job: Mapping[str, Any], status: RunStatus, retries: int) -> Decision:
    state = JobState(job["status"])
    stop = job.get("stop") or {}
    if state is JobState.CANCELING:
        idle = (job.get("serving") or {}).get("idle_stop")
        if idle:
            return Decision(JobState.CANCELED, f"stopped after {idle} minutes without requests")
        return Decision(JobState.CANCELED, "canceled by request")
    if job.get("action") == SERVE_ACTION:
        return _server_ended(job, status)
    if status.state is RunState.LOST and status.transient and not stop:
        return _after_node_failure(job, status, retries)
    if stop.get("reason") == StopReason.TIMEOUT:
        minutes = job.get("timeout_minutes")
        return Decision(JobState.ERROR, f"timeout: the run exceeded timeout_minutes={minutes}")
    if status.state is RunState.SUCCEEDED:
        return Decision(JobState.DONE, "completed")  # finishing beats a late pause
    if state is JobState.PAUSING:
        checkpoint = (job.get("job_details") or {}).get("checkpoint")
        how = (
            "paused with a checkpoint"
            if status.state is RunState.PAUSED
            else (f"paused (the run was stopped: {status.reason or status.state.value})")
        )
        where = f"; resume continues from {checkpoint}" if checkpoint else ""
        return Decision(JobState.PAUSED, how + where)
    if status.state is RunState.PAUSED:
        return Decision(JobState.PAUSED, "paused with a checkpoint; resume to continue")
    # the workload's own words
    return Decision(JobState.ERROR, f"run {status.state.value}: {_workload_words(job, status)}")


def _after_node_failure(job: Mapping[str, Any], status: RunStatus, retries: int) -> Decision:
    """Not the workload's fault: run it again from its checkpoint, a bounded number of times."""
    why = status.reason
    done = int(job.get("node_failures") or 0)
    if JobState(job["status"]) is JobState.PAUSING:
        return Decision(JobState.PAUSED, f"paused ({why}); resume continues from the checkpoint")
    if done >= retries:
        return Decision(JobState.ERROR, f"run lost: {why}; gave up after {done} resubmissions")
    return Decision(
        JobState.RESUMING,
        f"{why}: resubmitting from the checkpoint (attempt {done + 1} of {retries})",
        resubmit=True,
    )


def _workload_words(job: Mapping[str, Any], status: RunStatus) -> str:
    detail = status.reason or status.state.value
    last = (job.get("job_details") or {}).get("detailed_status") or {}
    if last.get("status") == "FAILURE" and last.get("message"):
        detail = f"{detail}: {last['message']}"
    return detail


def _server_ended(job: Mapping[str, Any], status: RunStatus) -> Decision:
    """A model server ended without a stop request: restarted if it had been serving (a
    crash), an Error if it never became ready (a bad model, image or command: a restart
    would fail the same way) or has been restarted ``max_restarts`` times."""
    serving = job.get("serving") or {}
    reason = (job.get("stop") or {}).get("reason")
    if reason == StopReason.UNHEALTHY:
        return Decision(
            JobState.ERROR,
            f"health check {serving.get('health_path')} failing: not ready "
            f"{serving.get('startup_seconds')} s after the server started",
        )
    detail = _workload_words(job, status)
    if not serving.get("ready_since"):
        return Decision(JobState.ERROR, f"the server exited before it was ready: {detail}")
    restarts, most = int(serving.get("restarts") or 0), int(serving.get("max_restarts") or 0)
    if restarts >= most:
        return Decision(
            JobState.ERROR, f"the server exited ({detail}); gave up after {restarts} restarts"
        )
    return Decision(
        JobState.RESUMING,
        f"the server exited ({detail}): restarting it (restart {restarts + 1} of {most})",
        resubmit=True,
        counter="serving.restarts",
    )


def _server_running(job: Mapping[str, Any], now: float) -> Decision | None:
    """Stop a server that never answers its health check, or that nobody calls."""
    serving = job.get("serving") or {}
    ready = serving.get("ready_since")
    started = job.get("started_on")
    if not ready and started and now - float(started) > float(serving.get("startup_seconds") or 0):
        return Decision(
            stop=StopKind.GRACEFUL,
            stop_reason=StopReason.UNHEALTHY,
            message=f"not ready after {serving.get('startup_seconds')} s: stopping the server",
        )
    last = max(float(ready or 0), float(serving.get("last_request") or 0))
    idle = serving.get("idle_timeout_minutes")
    if ready and idle and now - last > float(idle) * 60:
        # stopped as a cancel is (Canceling, then Canceled), saying why
        return Decision(
            JobState.CANCELING,
            f"no request for {idle} minutes: stopping the server",
            changes={"serving.idle_stop": idle},
        )
    return None


def decide(
    job: Mapping[str, Any], status: RunStatus, now: float, grace_seconds: float, retries: int = 0
) -> Decision:
    """``retries``: how many times a run lost to a node failure is resubmitted."""
    state = JobState(job["status"])
    if status.state.finished:
        return _finished(job, status, retries)
    stop = job.get("stop") or {}
    if stop:
        if not stop.get("killed_at") and now - float(stop["sent_at"]) >= grace_seconds:
            return Decision(
                stop=StopKind.KILL, message=f"{stop['reason']}: grace period over, killing"
            )
        return Decision()
    if state is JobState.CANCELING:
        return Decision(stop=StopKind.GRACEFUL, stop_reason=StopReason.CANCEL, message="canceling")
    if state is JobState.PAUSING:
        graceful = job.get("requested") != Request.PAUSE_NOW
        message = "pausing: waiting for the checkpoint" if graceful else "pausing at once"
        return Decision(
            stop=StopKind.GRACEFUL if graceful else StopKind.KILL,
            stop_reason=StopReason.PAUSE,
            message=message,
        )
    if state in (JobState.PENDING, JobState.RESUMING) and status.state is RunState.RUNNING:
        return Decision(
            JobState.RUNNING, "running", changes={"started_on": status.started_at or now}
        )
    if state is JobState.RUNNING and job.get("action") == SERVE_ACTION:
        return _server_running(job, now) or Decision()  # no run timeout: an idle one
    if state is JobState.RUNNING and _timed_out(job, now):
        minutes = job.get("timeout_minutes")
        return Decision(
            stop=StopKind.GRACEFUL,
            stop_reason=StopReason.TIMEOUT,
            message=f"timeout_minutes={minutes} reached: stopping the run",
        )
    if state is JobState.PENDING and status.reason:
        return Decision(message=status.reason)
    return Decision()


def _timed_out(job: Mapping[str, Any], now: float) -> bool:
    started = job.get("started_on")
    limit = job.get("timeout_minutes")
    return bool(started and limit and now - float(started) > float(limit) * 60)
