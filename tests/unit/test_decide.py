"""The job state machine, without any service."""

from __future__ import annotations

import pytest

from jobyard.backends.base import RunState, RunStatus
from jobyard.schemas.job import TRANSITIONS, JobState
from jobyard.workers.decide import decide

NOW = 10_000.0


def job(status="Running", **fields):
    return {"status": status, "timeout_minutes": 1, "started_on": NOW - 10, **fields}


def test_pending_becomes_running_when_the_backend_says_so():
    d = decide(job("Pending"), RunStatus(RunState.RUNNING, started_at=NOW - 1), NOW, 5)
    assert d.target is JobState.RUNNING and d.changes["started_on"] == NOW - 1


def test_a_queued_run_shows_the_backends_reason():
    d = decide(job("Pending"), RunStatus(RunState.QUEUED, reason="Priority"), NOW, 5)
    assert d.target is None and d.message == "Priority"


@pytest.mark.parametrize(
    ("state", "target"),
    [
        (RunState.SUCCEEDED, JobState.DONE),
        (RunState.FAILED, JobState.ERROR),
        (RunState.KILLED, JobState.ERROR),
        (RunState.LOST, JobState.ERROR),
        (RunState.PAUSED, JobState.PAUSED),
    ],
)
def test_a_finished_run_ends_the_job(state, target):
    assert decide(job(), RunStatus(state, exit_code=1), NOW, 5).target is target


def test_failure_message_carries_the_workloads_own_words():
    details = {"detailed_status": {"status": "FAILURE", "message": "no model in parent"}}
    d = decide(job(job_details=details), RunStatus(RunState.FAILED, 1, "exit code 1"), NOW, 5)
    assert d.message == "run failed: exit code 1: no model in parent"


def test_cancel_sends_a_graceful_stop_once_then_kills_after_the_grace_period():
    first = decide(job("Canceling"), RunStatus(RunState.RUNNING), NOW, 5)
    assert (first.stop, first.stop_reason) == ("graceful", "cancel")
    stopping = job("Canceling", stop={"reason": "cancel", "sent_at": NOW - 2, "killed_at": None})
    assert decide(stopping, RunStatus(RunState.RUNNING), NOW, 5).stop is None
    late = {**stopping, "stop": {**stopping["stop"], "sent_at": NOW - 6}}
    assert decide(late, RunStatus(RunState.RUNNING), NOW, 5).stop == "kill"
    killed = {**late, "stop": {**late["stop"], "killed_at": NOW - 1}}
    assert decide(killed, RunStatus(RunState.RUNNING), NOW, 5).stop is None


def test_a_canceled_run_that_ends_any_way_is_canceled():
    for state in (RunState.SUCCEEDED, RunState.KILLED, RunState.PAUSED):
        assert decide(job("Canceling"), RunStatus(state), NOW, 5).target is JobState.CANCELED


def test_timeout_is_wall_clock_from_the_start_and_ends_in_error():
    assert decide(job(started_on=NOW - 59), RunStatus(RunState.RUNNING), NOW, 5).stop is None
    d = decide(job(started_on=NOW - 61), RunStatus(RunState.RUNNING), NOW, 5)
    assert (d.stop, d.stop_reason) == ("graceful", "timeout")
    stopped = job(stop={"reason": "timeout", "sent_at": NOW, "killed_at": None})
    end = decide(stopped, RunStatus(RunState.PAUSED, 75), NOW, 5)
    assert end.target is JobState.ERROR and "timeout" in end.message


def test_every_target_has_a_source_and_final_states_have_no_way_out():
    for target, sources in TRANSITIONS.items():
        assert sources, target
        assert not any(s.final for s in sources)


NODE_FAIL = RunStatus(RunState.LOST, reason="node failure (NODE_FAIL)", transient=True)


@pytest.mark.parametrize("status", ["Pending", "Running", "Resuming"])
def test_a_node_failure_resubmits_from_the_checkpoint(status):
    d = decide(job(status, node_failures=1), NODE_FAIL, NOW, 5, retries=3)
    assert d.target is JobState.RESUMING and d.resubmit
    assert d.message == (
        "node failure (NODE_FAIL): resubmitting from the checkpoint (attempt 2 of 3)"
    )


def test_node_failures_beyond_the_cap_end_the_job():
    d = decide(job(node_failures=3), NODE_FAIL, NOW, 5, retries=3)
    assert d.target is JobState.ERROR and not d.resubmit
    assert "gave up after 3 resubmissions" in d.message


def test_a_node_failure_while_pausing_or_canceling_is_not_resubmitted():
    paused = decide(job("Pausing"), NODE_FAIL, NOW, 5, retries=3)
    assert paused.target is JobState.PAUSED and not paused.resubmit
    canceled = decide(job("Canceling"), NODE_FAIL, NOW, 5, retries=3)
    assert canceled.target is JobState.CANCELED


def test_a_plain_loss_is_not_retried():
    d = decide(job(), RunStatus(RunState.LOST, reason="run directory not found"), NOW, 5, 3)
    assert d.target is JobState.ERROR and not d.resubmit
