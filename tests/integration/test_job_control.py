"""Pause, resume and their races, through a real worker and the reference workload."""

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


def final_val_accuracy(s, job_id):
    kpi = s.call("GET", f"jobs/{job_id}").json["job_details"]["kpi"]
    return {k["metric"]: k["value"] for k in kpi}["val_accuracy"]


def test_graceful_pause_then_resume_trains_each_epoch_once(login, worker):
    s = login()
    worker()
    job_id = train(s, epochs=8, pace=0.4)
    until_status(s, job_id, "Running")
    wait_epoch(s, job_id, 2)
    assert (
        s.call("POST", f"jobs/{job_id}:pause", json={"graceful": True}).json["status"] == "Pausing"
    )
    paused = until_status(s, job_id, "Paused", timeout=30)
    assert "checkpoint" in paused["job_details"]["detailed_status"]["message"]
    done_before = [e["epoch"] for e in epoch_events(s, job_id, run=1)]
    k = done_before[-1]
    assert 2 <= k < 8 and done_before == list(range(1, k + 1))
    assert paused["job_details"]["checkpoint"].endswith(f"epoch_{k:03d}.npz")

    resumed = s.call("POST", f"jobs/{job_id}:resume", json={"parent_job_id": "", "specs": {}})
    assert resumed.status_code == 200 and resumed.json["status"] == "Resuming"
    assert resumed.json["run"] == 2
    until_status(s, job_id, "Done", timeout=60)
    after = [e["epoch"] for e in epoch_events(s, job_id, run=2)]
    assert after == list(range(k + 1, 9)), after
    all_events = s.call("GET", f"jobs/{job_id}:events?detailed=true").json["events"]
    assert [e["run"] for e in all_events] == sorted(e["run"] for e in all_events)

    straight = train(s, epochs=8)
    until_status(s, straight, "Done")
    assert final_val_accuracy(s, job_id) >= final_val_accuracy(s, straight) - 1e-9


def test_abrupt_pause_keeps_the_last_checkpoint(login, worker):
    s = login()
    worker()
    job_id = train(s, epochs=6, pace=0.4)
    until_status(s, job_id, "Running")
    wait_epoch(s, job_id, 2)
    s.call("POST", f"jobs/{job_id}:pause", json={"graceful": False})
    until_status(s, job_id, "Paused", timeout=30)
    k = epoch_events(s, job_id, run=1)[-1]["epoch"]
    s.call("POST", f"jobs/{job_id}:resume", json={})
    until_status(s, job_id, "Done", timeout=60)
    resumed_epochs = [e["epoch"] for e in epoch_events(s, job_id, run=2)]
    events = s.call("GET", f"jobs/{job_id}:events?detailed=true&run=2").json["events"]
    (start,) = [e["resumed_from_epoch"] for e in events if "resumed_from_epoch" in e]
    # A SIGKILL can land after epoch k+1's checkpoint was written but before its status
    # line was: then run 2 starts after k+1, never before k.
    assert start in (k, k + 1), (k, start)
    assert resumed_epochs == list(range(start + 1, 7))


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


def test_a_one_minute_timeout_ends_a_longer_job_within_the_limit(login, worker):
    s = login()
    worker()
    job_id = train(s, epochs=500, pace=1.0, timeout_minutes=1)
    running = until_status(s, job_id, "Running")
    job = until_status(s, job_id, "Error", timeout=90)
    assert "timeout" in job["job_details"]["detailed_status"]["message"]
    # limit + one tick (0.2 s) + grace (3 s) + slack for this machine
    assert job["finished_on"] is not None and running["started_on"] is not None
    elapsed = _seconds(job["finished_on"]) - _seconds(running["started_on"])
    assert 60 <= elapsed <= 60 + 0.2 + 3 + 4, elapsed


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
