"""Jobs end to end on the Kubernetes backend: REST API, a real worker (``backend_type:
local`` with ``JOBYARD_LOCAL_BACKEND=kubernetes``), the official client and the API server
double running the reference workload. The same lifecycle the process backend passes."""

from __future__ import annotations

import time

import pytest

from tests.helpers import wait_for
from tests.integration.test_engine import train, until_status
from tests.integration.test_job_control import epoch_events, wait_epoch
from tests.kubernetes.conftest import kube_env

pytestmark = pytest.mark.integration


@pytest.fixture
def kube_worker(worker, fake, volume):
    def start(**extra):
        return worker(**{**kube_env(fake, volume), **extra})

    return start


def test_train_goes_pending_running_done_with_events_and_logs(login, kube_worker, fake):
    s = login()
    kube_worker()
    job_id = train(s, epochs=3, pace=0.3)
    running = until_status(s, job_id, "Running")
    assert running["started_on"]
    done = until_status(s, job_id, "Done")
    assert done["job_details"]["epoch"] == 3
    assert done["job_details"]["detailed_status"]["status"] == "Done"
    assert [e["epoch"] for e in epoch_events(s, job_id)] == [1, 2, 3]
    logs = s.call("GET", f"jobs/{job_id}:logs").data
    assert b"epoch 3/3" in logs and logs.startswith(b"jobyard reference workload")
    wait_for(lambda: not fake.jobs, 10, "the finished Job deleted at cleanup")
    assert fake.created == [f"jy-{job_id}-r1"]  # a redispatch finds the Job, never doubles it


def test_graceful_pause_then_resume_trains_each_epoch_once(login, kube_worker, fake):
    s = login()
    kube_worker()
    job_id = train(s, epochs=10, pace=0.5)
    until_status(s, job_id, "Running")
    wait_epoch(s, job_id, 1)
    s.call("POST", f"jobs/{job_id}:pause", json={"graceful": True})
    paused = until_status(s, job_id, "Paused", timeout=30)
    assert "checkpoint" in paused["job_details"]["detailed_status"]["message"]
    before = [e["epoch"] for e in epoch_events(s, job_id, run=1)]
    k = before[-1]
    assert 1 <= k < 10 and before == list(range(1, k + 1))
    deletes = [r for r in fake.requests if r.method == "DELETE" and r.path.endswith("/pods")]
    assert deletes[0].query["gracePeriodSeconds"] == "3"  # the worker's grace period

    resumed = s.call("POST", f"jobs/{job_id}:resume", json={})
    assert resumed.json["run"] == 2
    until_status(s, job_id, "Done", timeout=60)
    assert [e["epoch"] for e in epoch_events(s, job_id, run=2)] == list(range(k + 1, 11))
    assert fake.created == [f"jy-{job_id}-r1", f"jy-{job_id}-r2"]  # one Job per run


def test_cancel_reaches_canceled_and_the_pod_is_gone(login, kube_worker, fake):
    s = login()
    kube_worker()
    job_id = train(s, epochs=50, pace=0.5)
    until_status(s, job_id, "Running")
    procs = list(fake.procs.values())
    assert s.call("POST", f"jobs/{job_id}:cancel").json["status"] == "Canceling"
    until_status(s, job_id, "Canceled", timeout=30)
    wait_for(lambda: all(p.poll() is not None for p in procs), 10, "the workload gone")
    wait_for(lambda: not fake.jobs and not fake.pods, 10, "Job and pod deleted")


def test_timeout_stops_the_run_and_says_so(login, kube_worker, store):
    s = login()
    kube_worker()
    job_id = train(s, epochs=100, pace=1.0, timeout_minutes=1)
    until_status(s, job_id, "Running")
    # One minute is the smallest timeout; move the start back instead of waiting.
    store.jobs.update_fields(job_id, "Running", {"started_on": time.time() - 61})
    job = until_status(s, job_id, "Error", timeout=30)
    assert "timeout" in job["job_details"]["detailed_status"]["message"]


def test_a_pending_job_shows_why(login, kube_worker):
    s = login()
    kube_worker()
    job_id = train(s, epochs=1, backend_details={"backend_type": "local", "num_gpus": 2})

    def reason():
        job = s.call("GET", f"jobs/{job_id}").json
        assert job["status"] == "Pending"
        return job["job_details"]["detailed_status"]["message"]

    message = wait_for(lambda: "unschedulable" in reason() and reason(), 30, "a reason")
    assert "Insufficient nvidia.com/gpu" in message
    s.call("POST", f"jobs/{job_id}:cancel")
    until_status(s, job_id, "Canceled", timeout=30)


def test_a_wrong_token_fails_the_job_with_a_clear_message(login, worker, fake, volume):
    s = login()
    worker(**kube_env(fake, volume, token="expired-token"))
    job = until_status(s, train(s, epochs=1), "Error", timeout=30)
    message = job["job_details"]["detailed_status"]["message"]
    assert "rejected jobyard's credentials (401 Unauthorized)" in message
    assert not fake.jobs
