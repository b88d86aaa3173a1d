"""Pause, resume and their races, through a real worker and the reference workload.
Graceful and abrupt pause then resume, on every backend, are the contract suite's
(tests/contract); ``epoch_events`` and ``wait_epoch`` here are helpers both use."""

from __future__ import annotations

import pytest

from tests.helpers import assert_error, wait_for
from tests.integration.test_engine import derived, train, until_status

pytestmark = pytest.mark.integration


def epoch_events(s, job_id, run=None):
    query = f"&run={run}" if run else ""
    events = s.call("GET", f"jobs/{job_id}:events?detailed=true{query}").json["events"]
    return [e for e in events if e.get("status") == "RUNNING" and "epoch" in e]


def wait_epoch(s, job_id, k):
    return wait_for(
        lambda: (s.call("GET", f"jobs/{job_id}").json["job_details"].get("epoch") or 0) >= k,
        30,
        f"epoch {k}",
    )


def test_invalid_control_requests_are_409(login, worker):
    s = login()
    worker()
    job_id = train(s, epochs=20, pace=0.3)
    until_status(s, job_id, "Running")
    body = assert_error(s.call("POST", f"jobs/{job_id}:resume", json={}), 409)
    assert "Running" in body["error_desc"]
    s.call("POST", f"jobs/{job_id}:cancel")
    until_status(s, job_id, "Canceled")
    assert_error(s.call("POST", f"jobs/{job_id}:pause"), 409)
    parent = train(s, epochs=1)
    until_status(s, parent, "Done")
    assert_error(s.call("POST", f"jobs/{parent}:pause"), 409)
    export = derived(s, "export", parent)
    assert "train jobs" in assert_error(s.call("POST", f"jobs/{export}:pause"), 409)["error_desc"]


def test_pause_and_cancel_together_end_canceled(login, worker):
    s = login()
    worker()
    job_id = train(s, epochs=30, pace=0.3)
    until_status(s, job_id, "Running")
    s.call("POST", f"jobs/{job_id}:pause")
    s.call("POST", f"jobs/{job_id}:cancel")
    until_status(s, job_id, "Canceled", timeout=30)
    assert_error(s.call("POST", f"jobs/{job_id}:resume", json={}), 409)


def test_worker_killed_while_pausing_still_leaves_the_job_paused(login, worker):
    s = login()
    first = worker()
    job_id = train(s, epochs=30, pace=0.3)
    until_status(s, job_id, "Running")
    wait_epoch(s, job_id, 1)
    s.call("POST", f"jobs/{job_id}:pause")
    wait_for(
        lambda: (
            s.call("GET", f"jobs/{job_id}")
            .json["job_details"]["detailed_status"]["message"]
            .startswith("pausing")
        ),
        20,
        "pause signal sent",
    )
    first.kill()
    worker()
    until_status(s, job_id, "Paused", timeout=40)


@pytest.mark.parametrize("retain", [False, True])
def test_early_stop_and_checkpoint_epochs(login, worker, retain):
    s = login()
    worker()
    job_id = train(s, epochs=8, early_stop_epoch=3, retain_checkpoints_for_resume=retain)
    done = until_status(s, job_id, "Done")
    assert done["job_details"]["epoch"] == 3
    assert [e["epoch"] for e in epoch_events(s, job_id)] == [1, 2, 3]
    epochs = s.call("GET", f"jobs/{job_id}:get_epoch_numbers").json["epoch_numbers"]
    assert epochs == ([1, 2, 3] if retain else [3])
