"""Lepton job states onto run states."""

from __future__ import annotations

import pytest

from jobyard.backends.base import RunState
from jobyard.backends.lepton.state import needs_exit_code, run_status


def job(state: str, **spec: object) -> dict:
    return {"metadata": {"id": "j"}, "spec": spec, "status": {"state": state}}


@pytest.mark.parametrize(
    ("state", "code", "expected", "exit"),
    [
        ("Completed", None, RunState.SUCCEEDED, 0),
        ("Running", None, RunState.RUNNING, None),
        ("Stopping", None, RunState.RUNNING, None),
        ("Stopped", 75, RunState.PAUSED, 75),
        ("Stopped", None, RunState.KILLED, None),
        ("Stopped", 0, RunState.SUCCEEDED, 0),
        ("Failed", 1, RunState.FAILED, 1),
        ("Failed", 75, RunState.PAUSED, 75),
        ("Failed", None, RunState.FAILED, None),
        ("Deleted", None, RunState.KILLED, None),
        ("Archived", None, RunState.LOST, None),
        ("Starting", None, RunState.QUEUED, None),
        ("Awaiting", None, RunState.QUEUED, None),
        ("PendingRetry", None, RunState.QUEUED, None),
        ("Restarting", None, RunState.QUEUED, None),
        ("SomethingNew", None, RunState.QUEUED, None),
    ],
)
def test_each_state_maps_onto_a_run_state(state, code, expected, exit):
    status = run_status(job(state), code)
    assert status.state is expected
    assert status.exit_code == exit


def test_a_job_missing_from_the_list_is_lost():
    status = run_status(None)
    assert status.state is RunState.LOST and "gone" in status.reason


def test_queueing_says_what_it_waits_for():
    queued = job(
        "Queueing",
        resource_shape="gpu.2xa100",
        affinity={"allowed_dedicated_node_groups": ["ng-a"]},
    )
    reason = run_status(queued).reason
    assert reason == "queued on Lepton: waiting for gpu.2xa100 capacity in node group ng-a"
    assert run_status(job("Starting")).reason.startswith("starting on Lepton")


def test_only_stopped_and_failed_need_the_exit_code_from_the_log():
    wanted = {
        s
        for s in ("Completed", "Running", "Stopped", "Failed", "Queueing")
        if needs_exit_code(job(s))
    }
    assert wanted == {"Stopped", "Failed"}
