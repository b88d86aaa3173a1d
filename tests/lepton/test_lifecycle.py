"""Jobs on a ``lepton`` workspace through the REST API, a real worker and the Lepton
double running the reference workload: the lifecycle tests the process backend passes."""

from __future__ import annotations

import time

import pytest
import redis

from jobyard.backends.lepton.backend import LeptonBackend
from jobyard.workers import engine
from jobyard.workers.context import Context
from tests.helpers import wait_for
from tests.integration.test_engine import train, until_status
from tests.integration.test_job_control import epoch_events, wait_epoch
from tests.lepton.conftest import TOKEN, workspace_details

pytestmark = pytest.mark.integration


def lepton_workspace(s, fake, token=TOKEN):
    body = {
        "name": "lepton",
        "cloud_type": "lepton",
        "cloud_specific_details": workspace_details(fake, token),
    }
    created = s.call("POST", "workspaces", json=body)
    assert created.status_code == 201, created.json
    return created.json["id"]


def lepton_train(s, ws, epochs=3, pace=0.0, **overrides):
    return train(
        s, epochs, pace, workspace=ws, backend_details={"backend_type": "lepton"}, **overrides
    )


def lepton_id(store, job_id):
    return store.jobs.find(job_id)["handle"]["data"]["lepton_job"]


def test_train_on_lepton_goes_running_then_done_with_events_and_logs(login, worker, fake, store):
    s = login()
    ws = lepton_workspace(s, fake)
    job_id = lepton_train(s, ws, epochs=4, pace=0.4)
    assert store.jobs.find(job_id)["backend"] == f"lepton:{ws}"
    worker()
    assert until_status(s, job_id, "Running", timeout=60)["started_on"]
    done = until_status(s, job_id, "Done", timeout=90)
    details = done["job_details"]
    assert details["epoch"] == 4 and details["max_epoch"] == 4
    assert dict((k["metric"], k["value"]) for k in details["kpi"])["val_accuracy"] > 0.8
    assert [e["epoch"] for e in epoch_events(s, job_id)] == [1, 2, 3, 4]
    logs = s.call("GET", f"jobs/{job_id}:logs").data
    assert b"epoch 4/4" in logs and b"@@jobyard" not in logs
    lepton_job = lepton_id(store, job_id)
    wait_for(lambda: fake.state(lepton_job) is None, 10, "Lepton job deleted at cleanup")


def test_graceful_pause_on_lepton_then_resume_trains_each_epoch_once(login, worker, fake, store):
    s = login()
    ws = lepton_workspace(s, fake)
    worker()
    job_id = lepton_train(s, ws, epochs=8, pace=0.4)
    until_status(s, job_id, "Running", timeout=60)
    first = lepton_id(store, job_id)
    wait_epoch(s, job_id, 2)
    assert s.call("POST", f"jobs/{job_id}:pause", json={"graceful": True}).json["status"] == (
        "Pausing"
    )
    paused = until_status(s, job_id, "Paused", timeout=30)
    assert paused["job_details"]["detailed_status"]["message"].startswith(
        "paused with a checkpoint"
    )
    assert fake.calls("PATCH", f"/jobs/{first}")[0][3] == {"spec": {"stopped": True}}
    # stopped (not deleted: the workload checkpointed), then deleted once the job is Paused,
    # since a resume is a new Lepton job
    assert fake.calls("DELETE", f"/jobs/{first}")
    assert fake.state(first) is None
    before = [e["epoch"] for e in epoch_events(s, job_id, run=1)]
    k = before[-1]
    assert 2 <= k < 8 and before == list(range(1, k + 1))
    assert paused["job_details"]["checkpoint"].endswith(f"epoch_{k:03d}.npz")

    resumed = s.call("POST", f"jobs/{job_id}:resume", json={})
    assert resumed.status_code == 200 and resumed.json["run"] == 2
    until_status(s, job_id, "Done", timeout=90)
    assert [e["epoch"] for e in epoch_events(s, job_id, run=2)] == list(range(k + 1, 9))
    assert lepton_id(store, job_id) != first  # a new Lepton job for the new run


def test_cancel_on_lepton_ends_canceled_and_the_container_is_gone(login, worker, fake, store):
    s = login()
    ws = lepton_workspace(s, fake)
    worker()
    job_id = lepton_train(s, ws, epochs=50, pace=0.5)
    until_status(s, job_id, "Running", timeout=60)
    lepton_job = lepton_id(store, job_id)
    proc = fake.procs[f"{lepton_job}-0-abcde"]
    assert s.call("POST", f"jobs/{job_id}:cancel").json["status"] == "Canceling"
    until_status(s, job_id, "Canceled", timeout=30)
    proc.wait(timeout=10)  # the container ended (raises if it still runs)
    wait_for(lambda: fake.state(lepton_job) is None, 10, "Lepton job deleted")


def test_a_pending_lepton_job_says_why_then_runs_when_capacity_frees(login, worker, fake):
    fake.capacity = 0
    s = login()
    ws = lepton_workspace(s, fake)
    worker()
    job_id = lepton_train(s, ws, epochs=1)

    def waiting():
        job = s.call("GET", f"jobs/{job_id}").json
        message = job["job_details"]["detailed_status"]["message"]
        return job if message.startswith("queued on Lepton") else None

    job = wait_for(waiting, 60, "the queueing reason")
    assert job["status"] == "Pending"
    assert job["job_details"]["detailed_status"]["message"] == (
        "queued on Lepton: waiting for cpu.small capacity"
    )
    fake.capacity = None
    until_status(s, job_id, "Done", timeout=60)


def test_a_wrong_lepton_token_fails_the_job_with_a_clear_error(login, settings, store, fake):
    s = login()
    ws = lepton_workspace(s, fake, token="not-the-token-42")
    job_id = lepton_train(s, ws, epochs=1)
    ctx = Context(settings, store, redis.Redis.from_url(settings.redis_url), celery=None)
    assert engine.dispatch(ctx, job_id) == "failed"
    job = s.call("GET", f"jobs/{job_id}").json
    message = job["job_details"]["detailed_status"]["message"]
    assert job["status"] == "Error"
    assert message.startswith("submit failed: Lepton rejected the token for workspace testws")
    assert "not-the-token-42" not in str(job) and not fake.jobs


def test_a_hundred_lepton_jobs_are_reconciled_with_one_list_call(login, settings, store, fake):
    """Reconcile in this process so that the double can count the calls of one tick."""
    fake.capacity = 0  # queued on Lepton: nothing runs, and each job must say why
    s = login()
    ws = lepton_workspace(s, fake)
    ctx = Context(settings, store, redis.Redis.from_url(settings.redis_url), celery=None)
    target = f"lepton:{ws}"
    ids = [lepton_train(s, ws, epochs=1) for _ in range(100)]
    for job_id in ids:
        assert engine.dispatch(ctx, job_id) == "submitted"
    assert isinstance(ctx.backend(target), LeptonBackend)
    for _ in range(2):
        fake.requests.clear()
        assert engine.reconcile(ctx, target) == 100
        assert [(m, q["page"]) for m, _, q, _ in fake.requests] == [("GET", "1"), ("GET", "2")]
    messages = {store.jobs.find(i)["job_details"]["detailed_status"]["message"] for i in ids}
    assert messages == {"queued on Lepton: waiting for cpu.small capacity"}


def test_a_one_minute_timeout_stops_a_longer_lepton_job(login, worker, fake):
    s = login()
    ws = lepton_workspace(s, fake)
    worker()
    started = time.monotonic()
    job_id = lepton_train(s, ws, epochs=500, pace=1.0, timeout_minutes=1)
    failed = until_status(s, job_id, "Error", timeout=120)
    elapsed = time.monotonic() - started
    assert "timeout" in failed["job_details"]["detailed_status"]["message"]
    assert 60 <= elapsed < 60 + 3 + 20, elapsed  # limit + grace + ticks on a loaded machine
