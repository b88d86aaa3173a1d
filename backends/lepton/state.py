"""Lepton job states onto jobyard's ``RunState``, as pure functions.

Lepton reports no exit code, so for the two ends where it matters (``Stopped``: did the
workload checkpoint and exit 75, or was it cut off? ``Failed``: with which code?) the
backend reads the code the ``entrypoint`` wrapper printed last in the replica log and
passes it in here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobyard.backends.base import EXIT_PAUSED, RunState, RunStatus

WAITING = {
    "Starting": "starting on Lepton: scheduling the replica and pulling the image",
    "Queueing": "queued on Lepton: waiting for {shape} capacity{where}",
    "Awaiting": "awaiting resources on Lepton: {shape}{where} is not free yet",
    "PendingRetry": "Lepton is about to retry the replica",
    "Restarting": "Lepton is restarting the replica",
}
ACTIVE = {
    "Running": "",
    "Stopping": "stopping on Lepton: waiting for the workload to exit",
    "Terminating": "terminating on Lepton",
    "Deleting": "being deleted on Lepton",
}
WITH_EXIT_CODE = frozenset({"Stopped", "Failed"})
NOT_STARTED = frozenset(WAITING)


def job_state(job: Mapping[str, Any]) -> str:
    return str((job.get("status") or {}).get("state") or "")


def needs_exit_code(job: Mapping[str, Any]) -> bool:
    """Whether mapping this job needs the exit code from its log."""
    return job_state(job) in WITH_EXIT_CODE


def _where(job: Mapping[str, Any]) -> tuple[str, str]:
    spec = job.get("spec") or {}
    shape = str(spec.get("resource_shape") or "the requested")
    groups = (spec.get("affinity") or {}).get("allowed_dedicated_node_groups") or []
    return shape, (f" in node group {', '.join(map(str, groups))}" if groups else "")


def _ended(state: str, exit_code: int | None) -> RunStatus:
    if exit_code == EXIT_PAUSED:
        return RunStatus(RunState.PAUSED, exit_code, "paused after checkpoint")
    if exit_code == 0:
        return RunStatus(RunState.SUCCEEDED, 0, "exit code 0")
    if exit_code is not None:
        return RunStatus(RunState.FAILED, exit_code, f"exit code {exit_code}")
    if state == "Stopped":
        return RunStatus(
            RunState.KILLED, None, "stopped on Lepton before the workload reported an exit code"
        )
    return RunStatus(RunState.FAILED, None, "failed on Lepton without an exit code; see the log")


def run_status(job: Mapping[str, Any] | None, exit_code: int | None = None) -> RunStatus:
    """The run's status from its Lepton job (None: not in the workspace's job list)."""
    if job is None:
        return RunStatus(RunState.LOST, reason="the Lepton job is gone (deleted or archived)")
    state = job_state(job)
    if state == "Completed":
        return RunStatus(RunState.SUCCEEDED, 0, "completed on Lepton")
    if state in WITH_EXIT_CODE:
        return _ended(state, exit_code)
    if state == "Deleted":
        return RunStatus(RunState.KILLED, None, "deleted on Lepton")
    if state == "Archived":
        return RunStatus(RunState.LOST, reason="archived on Lepton before jobyard saw it end")
    if state in ACTIVE:
        return RunStatus(RunState.RUNNING, reason=ACTIVE[state])
    if state in WAITING:
        shape, where = _where(job)
        return RunStatus(RunState.QUEUED, reason=WAITING[state].format(shape=shape, where=where))
    return RunStatus(RunState.QUEUED, reason=f"Lepton reports state {state or 'unknown'!r}")
