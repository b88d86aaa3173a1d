"""Jobs end to end through a real Celery worker, Redis, the MongoDB-wire
server and the process backend running the reference workload. The lifecycle every
backend shares (train, cancel, timeout ...) is the contract suite's, tests/contract;
``train``, ``derived`` and ``until_status`` here are the helpers both use."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import redis

from jobyard.store.catalog import REFERENCE
from tests.helpers import on_both_servers, wait_for

pytestmark = pytest.mark.integration


def train(s, epochs=3, pace=0.0, **overrides):
    specs = REFERENCE.default_spec("train")
    specs["train"].update(num_epochs=epochs, min_epoch_seconds=pace)
    body = {
        "kind": "experiment",
        "network_arch": "classification_pyt",
        "action": "train",
        "name": f"train-{uuid.uuid4().hex[:8]}",
        "specs": specs,
        **overrides,
    }
    response = s.call("POST", "jobs", json=body)
    assert response.status_code == 201, response.json
    return response.json["id"]


def derived(s, action, parent):
    body = {
        "kind": "experiment",
        "network_arch": "classification_pyt",
        "action": action,
        "parent_job_id": parent,
        "specs": REFERENCE.default_spec(action),
    }
    response = s.call("POST", "jobs", json=body)
    assert response.status_code == 201, response.json
    return response.json["id"]


def status_of(s, job_id):
    return s.call("GET", f"jobs/{job_id}").json["status"]


def until_status(s, job_id, wanted, timeout=60):
    def check():
        job = s.call("GET", f"jobs/{job_id}").json
        if job["status"] in {"Done", "Error", "Canceled"} - {wanted}:
            raise AssertionError(f"job ended {job['status']}: {job['job_details']}")
        return job if job["status"] == wanted else None

    return wait_for(check, timeout, f"job {job_id} {wanted}")


@on_both_servers
def test_train_goes_pending_running_done_with_an_event_per_epoch(login, worker):
    s = login()
    job_id = train(s, epochs=4, pace=0.4)
    assert status_of(s, job_id) == "Pending"
    worker()
    running = until_status(s, job_id, "Running")
    assert running["started_on"]
    done = until_status(s, job_id, "Done")
    details = done["job_details"]
    assert details["epoch"] == 4 and details["max_epoch"] == 4
    assert {k["metric"] for k in details["kpi"]} >= {"val_accuracy"}
    assert dict((k["metric"], k["value"]) for k in details["kpi"])["val_accuracy"] > 0.8
    assert {g["metric"] for g in details["graphical"]} >= {"loss", "val_accuracy"}
    assert details["detailed_status"]["status"] == "Done"
    events = s.call("GET", f"jobs/{job_id}:events?detailed=true").json["events"]
    epochs = [e["epoch"] for e in events if e.get("status") == "RUNNING" and "epoch" in e]
    assert epochs == [1, 2, 3, 4]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    lines = s.call("GET", f"jobs/{job_id}:events").json["events"]
    assert any(line.startswith("Epoch 4/4") for line in lines)
    logs = s.call("GET", f"jobs/{job_id}:logs")
    assert b"epoch 4/4" in logs.data
    tail = s.call("GET", f"jobs/{job_id}:logs?tail=1").data.decode()
    assert tail.count("\n") == 1
    offset = int(logs.headers["X-Next-Offset"])
    assert offset == len(logs.data)
    assert s.call("GET", f"jobs/{job_id}:logs?offset={offset}").data == b""


def test_evaluate_export_and_inference_from_a_trained_parent(login, worker):
    s = login()
    worker()
    parent = train(s, epochs=2)
    until_status(s, parent, "Done")
    children = {
        action: derived(s, action, parent) for action in ("evaluate", "export", "inference")
    }
    for action, job_id in children.items():
        done = until_status(s, job_id, "Done")
        if action == "evaluate":
            kpi = {k["metric"]: k["value"] for k in done["job_details"]["kpi"]}
            assert kpi["accuracy"] > 0.8


def test_a_failing_workload_ends_error_with_its_message(login, worker, store):
    s = login()
    worker()
    parent = train(s, epochs=1)
    until_status(s, parent, "Done")
    results = Path(store.jobs.find(parent)["handle"]["data"]["results_dir"])
    for model in results.glob("model_*.npz"):
        model.unlink()
    job = until_status(s, derived(s, "evaluate", parent), "Error")
    message = job["job_details"]["detailed_status"]["message"]
    assert "exit code 1" in message and "model" in message


def test_worker_killed_mid_dispatch_neither_loses_nor_doubles_a_job(login, worker):
    s = login()
    first = worker()
    time.sleep(1.5)  # worker up
    jobs = [train(s, epochs=1) for _ in range(12)]
    time.sleep(0.3)
    first.kill()  # SIGKILL, whatever it was doing
    worker()
    for job_id in jobs:
        until_status(s, job_id, "Done", timeout=90)
        events = s.call("GET", f"jobs/{job_id}:events?detailed=true").json["events"]
        started = [e for e in events if e.get("status") == "STARTED"]
        assert len(started) == 1, f"job {job_id} was launched {len(started)} times"


def test_redis_flushall_with_jobs_pending_loses_none(login, worker, redis_url):
    s = login()
    jobs = [train(s, epochs=1) for _ in range(5)]
    redis.Redis.from_url(redis_url).flushall()  # every dispatch message is gone
    worker()
    for job_id in jobs:
        until_status(s, job_id, "Done", timeout=60)


def test_a_transient_submit_failure_is_retried_then_reported(login, worker, tmp_path):
    s = login()
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("the runs dir cannot be created under a file")
    worker(JOBYARD_RESULTS_DIR=str(blocker / "runs"), JOBYARD_SUBMIT_RETRIES="2")
    job_id = train(s, epochs=1)
    job = until_status(s, job_id, "Error", timeout=60)
    message = job["job_details"]["detailed_status"]["message"]
    assert "after 2 retries" in message
