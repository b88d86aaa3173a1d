"""The backend contract: the job lifecycle every compute backend keeps, through the REST
API and a real worker running the reference workload, once per target (targets.py).

Waits are on states the API shows, never fixed sleeps; a timeout is reached by moving the
run's start back, not by waiting a minute.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
from datetime import datetime

import pytest

from tests.contract.targets import ABRUPT_PAUSE, BAD_CREDENTIALS, PENDING, SERVING
from tests.helpers import assert_error, kill_runs, wait_for
from tests.integration.test_engine import status_of, until_status
from tests.integration.test_job_control import epoch_events, wait_epoch
from tests.integration.test_serving import data_uri, digits

pytestmark = pytest.mark.integration

GRACE = 3.0  # JOBYARD_GRACE_PERIOD_SECONDS of the test worker
TICK = 0.2  # JOBYARD_RECONCILE_INTERVAL_SECONDS of the test worker


def detailed_events(s, job_id, run=None):
    query = f"&run={run}" if run else ""
    return s.call("GET", f"jobs/{job_id}:events?detailed=true{query}").json["events"]


def message_of(job):
    return job["job_details"]["detailed_status"]["message"]


def final_val_accuracy(s, job_id):
    kpi = s.call("GET", f"jobs/{job_id}").json["job_details"]["kpi"]
    return {k["metric"]: k["value"] for k in kpi}["val_accuracy"]


def seconds(iso):
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_train_goes_pending_running_done_with_an_event_per_epoch(target, session, worker, store):
    s = session
    job_id = target.train(s, epochs=4, pace=0.4)
    assert status_of(s, job_id) == "Pending"
    assert store.jobs.find(job_id)["backend"] == target.backend
    worker(**target.worker_env())
    running = until_status(s, job_id, "Running", timeout=60)
    assert running["started_on"]
    run = target.run_of(store, job_id)
    done = until_status(s, job_id, "Done", timeout=90)
    details = done["job_details"]
    assert details["epoch"] == 4 and details["max_epoch"] == 4
    assert dict((k["metric"], k["value"]) for k in details["kpi"])["val_accuracy"] > 0.8
    assert {g["metric"] for g in details["graphical"]} >= {"loss", "val_accuracy"}
    assert details["detailed_status"]["status"] == "Done"
    events = detailed_events(s, job_id)
    assert [e["epoch"] for e in epoch_events(s, job_id)] == [1, 2, 3, 4]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    lines = s.call("GET", f"jobs/{job_id}:events").json["events"]
    assert any(line.startswith("Epoch 4/4") for line in lines)
    logs = s.call("GET", f"jobs/{job_id}:logs")
    assert logs.data.startswith(b"jobyard reference workload") and b"epoch 4/4" in logs.data
    assert b"@@jobyard" not in logs.data  # status lines are events, not log
    tail = s.call("GET", f"jobs/{job_id}:logs?tail=1").data.decode()
    assert tail.count("\n") == 1
    offset = int(logs.headers["X-Next-Offset"])
    assert offset == len(logs.data)
    assert s.call("GET", f"jobs/{job_id}:logs?offset={offset}").data == b""
    target.assert_gone(run)  # cleaned up once Done
    target.check_done(s, store, job_id, run)


def test_graceful_pause_then_resume_trains_each_epoch_once(target, session, worker, store):
    s = session
    epochs, pace = target.pause_run
    worker(**target.worker_env())
    job_id = target.train(s, epochs=epochs, pace=pace)
    until_status(s, job_id, "Running", timeout=60)
    first = target.run_of(store, job_id)
    wait_epoch(s, job_id, 2)
    pausing = s.call("POST", f"jobs/{job_id}:pause", json={"graceful": True})
    assert pausing.json["status"] == "Pausing"
    paused = until_status(s, job_id, "Paused", timeout=60)
    assert message_of(paused).startswith("paused with a checkpoint")
    before = [e["epoch"] for e in epoch_events(s, job_id, run=1)]
    k = before[-1]
    assert 2 <= k < epochs and before == list(range(1, k + 1))
    assert paused["job_details"]["checkpoint"].endswith(f"epoch_{k:03d}.npz")
    target.assert_gone(first)
    target.check_paused(job_id, first)

    resumed = s.call("POST", f"jobs/{job_id}:resume", json={"parent_job_id": "", "specs": {}})
    assert resumed.status_code == 200 and resumed.json["status"] == "Resuming"
    assert resumed.json["run"] == 2
    straight = target.train(s, epochs=epochs)  # the same training, never paused
    until_status(s, job_id, "Done", timeout=90)
    after = [e["epoch"] for e in epoch_events(s, job_id, run=2)]
    assert after == list(range(k + 1, epochs + 1)), after
    runs = [e["run"] for e in detailed_events(s, job_id)]
    assert runs == sorted(runs)
    target.check_resumed(store, job_id, first)
    until_status(s, straight, "Done", timeout=90)
    assert final_val_accuracy(s, job_id) >= final_val_accuracy(s, straight) - 1e-9


@pytest.mark.needs(ABRUPT_PAUSE)
def test_abrupt_pause_keeps_the_last_checkpoint(target, session, worker, store):
    s = session
    epochs, pace = target.pause_run
    worker(**target.worker_env())
    job_id = target.train(s, epochs=epochs, pace=pace)
    until_status(s, job_id, "Running", timeout=60)
    first = target.run_of(store, job_id)
    wait_epoch(s, job_id, 2)
    s.call("POST", f"jobs/{job_id}:pause", json={"graceful": False})
    until_status(s, job_id, "Paused", timeout=60)
    target.assert_gone(first)
    k = epoch_events(s, job_id, run=1)[-1]["epoch"]
    s.call("POST", f"jobs/{job_id}:resume", json={})
    until_status(s, job_id, "Done", timeout=90)
    resumed_epochs = [e["epoch"] for e in epoch_events(s, job_id, run=2)]
    events = detailed_events(s, job_id, run=2)
    (start,) = [e["resumed_from_epoch"] for e in events if "resumed_from_epoch" in e]
    # A SIGKILL can land after epoch k+1's checkpoint was written but before its status
    # line was: then run 2 starts after k+1, never before k.
    assert start in (k, k + 1), (k, start)
    assert resumed_epochs == list(range(start + 1, epochs + 1))


def test_cancel_reaches_canceled_and_the_run_is_gone(target, session, worker, store):
    s = session
    worker(**target.worker_env())
    job_id = target.train(s, epochs=50, pace=0.5)
    until_status(s, job_id, "Running", timeout=60)
    run = target.run_of(store, job_id)
    assert s.call("POST", f"jobs/{job_id}:cancel").json["status"] == "Canceling"
    until_status(s, job_id, "Canceled", timeout=60)
    target.assert_gone(run)


def test_timeout_stops_the_run_and_says_so(target, session, worker, store):
    s = session
    worker(**target.worker_env())
    job_id = target.train(s, epochs=100, pace=1.0, timeout_minutes=1)
    until_status(s, job_id, "Running", timeout=60)
    run = target.run_of(store, job_id)
    # One minute is the smallest timeout; move the start back instead of waiting.
    assert store.jobs.update_fields(job_id, "Running", {"started_on": time.time() - 61})
    job = until_status(s, job_id, "Error", timeout=30)
    assert "timeout" in message_of(job)
    assert job["finished_on"] is not None and job["started_on"] is not None
    # ended within one tick, the grace period and this target's latency of the limit
    elapsed = seconds(job["finished_on"]) - seconds(job["started_on"])
    assert 60 <= elapsed <= 61 + TICK + GRACE + target.timeout_slack, elapsed
    target.assert_gone(run)


@pytest.mark.needs(PENDING)
def test_a_pending_job_shows_why(target, session, worker):
    s = session
    worker(**target.worker_env())
    job_id = target.train(s, epochs=1, **target.block(s))

    def reason():
        job = s.call("GET", f"jobs/{job_id}").json
        assert job["status"] == "Pending", job
        message = message_of(job)
        return message if target.is_waiting(message) else None

    target.check_waiting(wait_for(reason, 60, "the reason the job waits"))
    until_status(s, job_id, target.unblock(s, job_id), timeout=60)


@pytest.mark.needs(BAD_CREDENTIALS)
def test_bad_credentials_fail_the_job_with_a_clear_message(target, session, worker):
    s = session
    bad = target.bad_credentials(s)
    worker(**{**target.worker_env(), **bad.env})
    job_id = target.train(s, epochs=1, **bad.body)
    job = until_status(s, job_id, "Error", timeout=30)
    # refused at once, as a permanent error: not retried as if the backend were down
    assert message_of(job).startswith("submit failed: "), message_of(job)
    target.check_refused(message_of(job))
    assert bad.secret not in str(job)
    target.assert_nothing_submitted(job_id)


def test_an_automl_search_runs_its_trials_as_runs_of_the_backend(target, session, worker, store):
    """A search is the engine's, not the backend's: each trial is a run of the target's
    like any job, and the best one's model becomes the search's (issue 14)."""
    s = session
    worker(**target.worker_env())
    settings = {
        "automl_enabled": True,
        "automl_algorithm": "bayesian",
        "automl_max_recommendations": 2,
        "automl_max_concurrent": 2,
    }
    job_id = target.train(s, epochs=2, automl_settings=settings)
    done = until_status(s, job_id, "Done", timeout=120)
    rows = done["job_details"]["automl"]["experiments"]
    assert [r["outcome"] for r in rows] == ["finished", "finished"]
    for row in rows:
        trial = store.jobs.find(row["job_id"])
        assert trial["backend"] == target.backend and trial["handle"]["backend"]
    best = done["job_details"]["automl"]["best"]
    assert store.jobs.find(job_id)["handle"] == store.jobs.find(best["job_id"])["handle"]


def test_a_model_is_published_from_the_backends_results(target, session, worker):
    """Publishing reads the checkpoint where the backend keeps the job's results (local
    files, the SLURM cluster over SFTP, a Lepton volume) and copies it byte for byte."""
    s = session
    worker(**target.worker_env())
    job_id = target.train(s, epochs=2)
    until_status(s, job_id, "Done", timeout=60)
    registry = s.call("POST", "workspaces", json={"name": "registry", "cloud_type": "local"})
    body = {"display_name": f"{target.backend} digits", "workspace": registry.json["id"]}
    published = s.call("POST", f"jobs/{job_id}:publish_model", json=body)
    if not target.lists_results:  # Lepton: the results are out of jobyard's reach
        assert published.status_code == 501 and "cannot" in published.json["error_desc"]
        assert s.call("GET", "models").json["models"] == []
        return
    assert published.status_code == 201, published.json
    archive = s.call("POST", f"jobs/{job_id}:download_selective_files", json={"best_model": True})
    with tarfile.open(fileobj=io.BytesIO(archive.data), mode="r:gz") as tar:
        (member,) = [m for m in tar.getmembers() if m.isfile()]
        data = tar.extractfile(member).read()
    assert member.name == f"{job_id}/{published.json['checkpoint']}"
    assert published.json["sha256"] == hashlib.sha256(data).hexdigest()
    assert published.json["size"] == len(data)
    removed = s.call("POST", f"jobs/{job_id}:remove_published_model", json={})
    assert removed.status_code == 200, removed.json


def test_an_inference_microservice_serves_the_trained_model_and_stops(
    target, session, worker, store
):
    """start, Ready, a digit of the packaged set answered right, stop, and the server is
    gone; a backend that cannot serve yet says so in the service's error."""
    s = session
    worker(**target.worker_env())
    parent = target.train(s, epochs=4)
    until_status(s, parent, "Done", timeout=60)
    body = {"parent_job_id": parent, "checkpoint_choose_method": "best_model"}
    started = s.call("POST", "inference_microservices:start", json=body)
    if not target.lists_results:  # Lepton: no checkpoint to choose from out here
        assert started.status_code == 400, started.json
        assert "cannot choose a checkpoint" in started.json["error_desc"]
        return
    assert started.status_code == 201, started.json
    service = started.json["id"]
    if SERVING not in target.scenarios:
        failed = wait_for(lambda: _service_ended(s, service), 60, "the service's error")
        assert failed["status"] == "Error" and "cannot serve models yet" in failed["message"]
        return
    wait_for(lambda: _service(s, service)["status"] == "Ready", 60, "Ready")
    val_split = s.call("GET", f"jobs/{parent}").json["specs"]["dataset"]["val_split"]
    samples = digits(10, val_split)
    answer = s.call(
        "POST",
        f"inference_microservices/{service}:inference",
        json={"input": [data_uri(raw) for raw, _ in samples]},
    )
    assert answer.status_code == 200, answer.json
    predicted = [p["label"] for p in answer.json["predictions"]]
    assert sum(p == label for p, (_, label) in zip(predicted, samples, strict=True)) >= 8
    run = target.run_of(store, service)
    stopped = s.call("POST", f"inference_microservices/{service}:stop")
    assert stopped.status_code == 200, stopped.json
    wait_for(lambda: _service(s, service)["status"] == "Stopped", 60, "Stopped")
    target.assert_gone(run)  # the server's process, pod or batch job
    assert_error(
        s.call(
            "POST",
            f"inference_microservices/{service}:inference",
            json={"input": [data_uri(samples[0][0])]},
        ),
        409,
    )


@pytest.fixture(autouse=True)
def no_server_outlives_its_test(settings):
    yield
    kill_runs(settings.runs_dir)


def _service(s, service_id):
    return s.call("GET", f"inference_microservices/{service_id}:status").json


def _service_ended(s, service_id):
    found = _service(s, service_id)
    return found if found["status"] in ("Error", "Stopped") else None
