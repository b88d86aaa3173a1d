"""Job and Pod objects (the API's JSON, as dicts) to ``RunStatus``, as pure functions.

The pod says the most (phase, scheduling, image pulls, exit code) while it exists; the
Job's conditions are what is left once the pod is gone (a graceful pause deletes it).
A pending run always gets a reason, so ``detailed_status`` never shows a silent job.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from jobyard.backends.base import EXIT_PAUSED, RunState, RunStatus
from jobyard.backends.kubernetes.manifest import RUN_NAME

# "Container main for pod ns/name failed with exit code 75 matching FailJob rule at index 0"
_POLICY_EXIT = re.compile(r"exit code (\d+)")
# Waiting reasons that no amount of waiting fixes.
PERMANENT_WAITING = frozenset({"InvalidImageName", "ErrImageNeverPull"})
PULL_FAILED = frozenset({"ErrImagePull", "ImagePullBackOff"})
Obj = Mapping[str, Any]


def timestamp(value: Any) -> float | None:
    """RFC 3339 (``2024-01-01T00:00:00Z``) to epoch seconds."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def by_run(objects: Iterable[Obj]) -> dict[str, list[Obj]]:
    """Objects grouped by their ``jobyard.io/run-name`` label, oldest first."""
    grouped: dict[str, list[Obj]] = {}
    for obj in objects:
        name = ((obj.get("metadata") or {}).get("labels") or {}).get(RUN_NAME)
        if name:
            grouped.setdefault(name, []).append(obj)
    for items in grouped.values():
        items.sort(key=lambda o: str((o.get("metadata") or {}).get("creationTimestamp", "")))
    return grouped


def _container(pod: Obj) -> Obj:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return statuses[0] if statuses else {}


def _condition(obj: Obj, kind: str) -> Obj | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return dict(condition)
    return None


def started_at(pod: Obj | None) -> float | None:
    if pod is None:
        return None
    running = (_container(pod).get("state") or {}).get("running") or {}
    return timestamp(running.get("startedAt")) or timestamp(
        (pod.get("status") or {}).get("startTime")
    )


def ended(exit_code: int | None, reason: str, started: float | None) -> RunStatus:
    """A finished run by its exit code, as the process backend reports one."""
    if exit_code == 0:
        return RunStatus(RunState.SUCCEEDED, 0, "exit code 0", started)
    if exit_code == EXIT_PAUSED:
        return RunStatus(RunState.PAUSED, exit_code, "paused after checkpoint", started)
    if exit_code is None:
        return RunStatus(RunState.FAILED, None, reason, started)
    detail = f"exit code {exit_code}" + (f" ({reason})" if reason else "")
    return RunStatus(RunState.FAILED, exit_code, detail, started)


def pod_terminated(pod: Obj) -> RunStatus | None:
    """The pod's final state, or None while it has not ended."""
    terminated = (_container(pod).get("state") or {}).get("terminated")
    phase = (pod.get("status") or {}).get("phase")
    if terminated is None and phase not in ("Succeeded", "Failed"):
        return None
    terminated = terminated or {}
    code = terminated.get("exitCode")
    reason = str(terminated.get("reason") or "")
    if reason in ("Error", "Completed"):
        reason = ""  # says nothing the exit code does not
    if code is None and phase == "Succeeded":
        code = 0
    if code is None:
        reason = (pod.get("status") or {}).get(
            "message"
        ) or "the pod failed before its container ran"
    return ended(code if isinstance(code, int) else None, reason, started_at(pod))


def pending_reason(pod: Obj | None) -> RunStatus:
    """Why a run is not running yet: scheduling, image pulls, container creation."""
    if pod is None:
        return RunStatus(RunState.QUEUED, reason="waiting for Kubernetes to create the pod")
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            why = condition.get("message") or condition.get("reason") or "no node fits"
            return RunStatus(RunState.QUEUED, reason=f"unschedulable: {why}")
    container = _container(pod)
    waiting = (container.get("state") or {}).get("waiting") or {}
    reason = str(waiting.get("reason") or "")
    message = str(waiting.get("message") or "")
    image = container.get("image") or _spec_image(pod)
    if reason in PERMANENT_WAITING:
        return RunStatus(RunState.FAILED, reason=f"{reason}: {message or image}")
    if reason in PULL_FAILED:
        return RunStatus(RunState.QUEUED, reason=f"cannot pull image {image} ({reason}): {message}")
    if reason == "ContainerCreating" or (not reason and _scheduled(pod)):
        return RunStatus(RunState.QUEUED, reason=f"pulling image {image} / creating the container")
    if reason:
        return RunStatus(RunState.QUEUED, reason=f"{reason}: {message}" if message else reason)
    return RunStatus(RunState.QUEUED, reason="waiting for a node (scheduling)")


def _scheduled(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "PodScheduled" and c.get("status") == "True" for c in conditions)


def _spec_image(pod: Obj) -> str:
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return str(containers[0].get("image", "?"))


def job_failed(job: Obj, pod: Obj | None) -> RunStatus:
    """A Job with a ``Failed`` condition: a timeout, a pause (exit 75) or a failure."""
    condition = _condition(job, "Failed") or {}
    reason = str(condition.get("reason") or "")
    message = str(condition.get("message") or "")
    started = started_at(pod)
    if reason == "DeadlineExceeded":
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        return RunStatus(
            RunState.KILLED, None, f"timeout: activeDeadlineSeconds={deadline} reached", started
        )
    if pod is not None:
        final = pod_terminated(pod)
        if final is not None:
            return final
    found = _POLICY_EXIT.search(message) if reason == "PodFailurePolicy" else None
    if found:
        return ended(int(found.group(1)), "", started)
    return RunStatus(RunState.FAILED, None, f"{reason}: {message}".strip(": "), started)


def run_status(job: Obj | None, pods: Sequence[Obj], name: str) -> RunStatus:
    """The state of one run from its Job and its pods (oldest first)."""
    pod = pods[-1] if pods else None
    if job is None:
        if pod is not None:
            final = pod_terminated(pod)
            if final is not None:
                return final
        return RunStatus(RunState.LOST, reason=f"Kubernetes Job {name} not found (deleted?)")
    if _condition(job, "Complete"):
        return RunStatus(RunState.SUCCEEDED, 0, "exit code 0", started_at(pod))
    if _condition(job, "Failed"):
        return job_failed(job, pod)
    if pod is None:
        return pending_reason(None)
    final = pod_terminated(pod)
    if final is not None:
        return final  # the Job controller has not caught up yet; the pod is final
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Running":
        terminating = (pod.get("metadata") or {}).get("deletionTimestamp")
        reason = "stopping: the pod is terminating" if terminating else ""
        return RunStatus(RunState.RUNNING, reason=reason, started_at=started_at(pod))
    return pending_reason(pod)


def server_status(deployment: Obj | None, pods: Sequence[Obj], name: str) -> RunStatus:
    """A model server run from its Deployment and pod: running while its container has
    never exited; ended (with the exit code) once it has, though Kubernetes restarts it,
    so that jobyard counts the restart and replaces the run itself."""
    pod = pods[-1] if pods else None
    if pod is not None:
        container = _container(pod)
        last = (container.get("lastState") or {}).get("terminated")
        if int(container.get("restartCount") or 0) > 0 and last:
            reason = "the container exited; Kubernetes restarted it"
            return ended(last.get("exitCode"), reason, started_at(pod))
        final = pod_terminated(pod)
        if final is not None:
            return final
    if deployment is None:
        if pod is not None and (pod.get("metadata") or {}).get("deletionTimestamp"):
            return RunStatus(RunState.RUNNING, reason="stopping: the pod is terminating")
        return RunStatus(RunState.LOST, reason=f"Kubernetes Deployment {name} not found (deleted?)")
    if pod is None:
        return pending_reason(None)
    if (pod.get("status") or {}).get("phase") == "Running":
        return RunStatus(RunState.RUNNING, started_at=started_at(pod))
    return pending_reason(pod)
