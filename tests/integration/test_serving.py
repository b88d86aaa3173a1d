"""Inference microservices on the embedded default: a real worker starts the reference
workload's model server for a trained job, the API forwards seed 000's requests to it,
and the engine restarts it when it dies, stops it when idle or asked, and reports why it
failed when it cannot serve."""

from __future__ import annotations

import base64
import os
import signal
import socket

import pytest

from jobyard.workloads import data, images
from tests.helpers import assert_error, kill_runs, wait_for
from tests.integration.test_engine import train, until_status
from tests.integration.test_publish import workspace

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def no_server_outlives_its_test(settings):
    yield
    kill_runs(settings.runs_dir)


def data_uri(raw):
    return "data:image/png;base64," + base64.b64encode(raw).decode()


def digits(count, val_split):
    """Validation digits of the split the model was trained beside (never trained on)."""
    pixels, labels = data.load_digits()  # scaled to [0, 1]
    _, val = data.split_indices(labels, val_split)
    return [(images.png_of(pixels[i] * data.PIXEL_MAX), int(labels[i])) for i in val[:count]]


def start(s, parent, **fields):
    body = {  # seed 000's request, with this deployment's network
        "docker_image": "nvcr.io/nvidia/tao/tao-toolkit:5.0.0-tf2.11.0",
        "gpu_type": "a100",
        "num_gpus": 0,
        "parent_job_id": parent,
        "kind": "experiment",
        "checkpoint_choose_method": "best_model",
        "network_arch": "classification_pyt",
        **fields,
    }
    response = s.call("POST", "inference_microservices:start", json=body)
    assert response.status_code == 201, response.json
    return response.json


def status(s, service_id):
    return s.call("GET", f"inference_microservices/{service_id}:status").json


def until(s, service_id, wanted, timeout=60):
    def check():
        found = status(s, service_id)
        if found["status"] in {"Error", "Stopped"} - {wanted}:
            raise AssertionError(f"service ended {found['status']}: {found['message']}")
        return found if found["status"] == wanted else None

    return wait_for(check, timeout, f"service {service_id} {wanted}")


def server_pid(s, service_id, run):
    """The pid the server's "serving" event names; the health check may answer before
    reconcile has read that event, so wait for it."""

    def found():
        path = f"jobs/{service_id}:events?detailed=true&run={run}"
        events = s.call("GET", path).json["events"]
        return next((e["pid"] for e in reversed(events) if e.get("pid")), None)

    return wait_for(found, 30, f"run {run}'s serving event")


def refused(url):
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as probe:
        return probe.connect_ex((host, int(port))) != 0


def test_serve_a_trained_model_answer_digits_survive_a_crash_and_stop(
    login, worker, store, settings
):
    s = login()
    ws = workspace(s)
    first_worker = worker()
    parent = until_status(s, train(s, epochs=10, workspace=ws), "Done")
    service = start(s, parent["id"], workspace=ws, max_restarts=1)
    assert service["status"] == "Pending" and service["model"] == "model_best.npz"
    ready = until(s, service["id"], "Ready")
    assert ready["ready_since"] and ready["restarts"] == 0 and ready["requests_served"] == 0
    assert "ready: serving model_best.npz" in ready["message"]

    # seed 000's base64 shape: a batch of validation digits, nearly all right
    samples = digits(30, parent["specs"]["dataset"]["val_split"])
    answer = s.call(
        "POST",
        f"inference_microservices/{service['id']}:inference",
        json={"input": [data_uri(raw) for raw, _ in samples], "model": "digits"},
    )
    assert answer.status_code == 200, answer.json
    predicted = [p["label"] for p in answer.json["predictions"]]
    right = sum(p == label for p, (_, label) in zip(predicted, samples, strict=True))
    assert right >= 27, (predicted, [label for _, label in samples])
    assert all(abs(sum(p["probabilities"]) - 1) < 1e-3 for p in answer.json["predictions"])

    # seed 000's media shape: a file of the workspace, read by jobyard
    raw, label = next((r, lbl) for (r, lbl), p in zip(samples, predicted, strict=True) if p == lbl)
    target = settings.workspace_root / "acme" / ws  # a local workspace's directory
    (target / "inbox").mkdir(parents=True)
    (target / "inbox" / "digit.png").write_bytes(raw)
    media = s.call(
        "POST",
        f"inference_microservices/{service['id']}:inference",
        json={"media": "inbox/digit.png", "prompt": "which digit is this"},
    )
    assert media.status_code == 200, media.json
    assert media.json["predictions"][0]["label"] == label
    assert status(s, service["id"])["requests_served"] == 2

    # the worker restarted: the server runs on, is the same run, and still answers
    before = store.jobs.find(service["id"])
    first_worker.stop()
    again = s.call(
        "POST",
        f"inference_microservices/{service['id']}:inference",
        json={"input": [data_uri(raw)]},
    )
    assert again.status_code == 200 and again.json["predictions"][0]["label"] == label
    worker()  # the restart below is this worker's: it watches a server it did not start
    after = status(s, service["id"])
    assert after["status"] == "Ready" and after["restarts"] == 0, after
    found = store.jobs.find(service["id"])
    assert (found["run"], found["serving"]["url"]) == (before["run"], before["serving"]["url"])

    # the model's job cannot be deleted while it is served
    assert (
        "inference microservices"
        in assert_error(s.call("DELETE", f"jobs/{parent['id']}"), 409)["error_desc"]
    )

    # the server killed: restarted (a new run), Ready again, answers again
    first_url = store.jobs.find(service["id"])["serving"]["url"]
    os.kill(server_pid(s, service["id"], 1), signal.SIGKILL)
    wait_for(lambda: status(s, service["id"])["restarts"] == 1, 60, "a restart")
    again = until(s, service["id"], "Ready")
    assert "restarting" not in again["message"] and again["restarts"] == 1
    one = s.call(
        "POST",
        f"inference_microservices/{service['id']}:inference",
        json={"input": [data_uri(raw)]},
    )
    assert one.status_code == 200 and one.json["predictions"][0]["label"] == label
    assert refused(first_url) or store.jobs.find(service["id"])["serving"]["url"] == first_url

    # killed once more than max_restarts: Error, saying so
    os.kill(server_pid(s, service["id"], 2), signal.SIGKILL)
    failed = until(s, service["id"], "Error")
    assert "gave up after 1 restarts" in failed["message"], failed
    assert (
        "is Error, not Ready"
        in assert_error(
            s.call(
                "POST",
                f"inference_microservices/{service['id']}:inference",
                json={"input": [data_uri(raw)]},
            ),
            409,
        )["error_desc"]
    )

    # a second service of the same model: stop it, and its server is gone
    second = start(s, parent["id"], workspace=ws)
    until(s, second["id"], "Ready")
    url = store.jobs.find(second["id"])["serving"]["url"]
    pid = server_pid(s, second["id"], 1)
    stopping = s.call("POST", f"inference_microservices/{second['id']}:stop")
    assert stopping.status_code == 200 and stopping.json["status"] in ("Stopping", "Stopped")
    until(s, second["id"], "Stopped")
    wait_for(lambda: not os.path.exists(f"/proc/{pid}") or _zombie(pid), 30, "server gone")
    assert refused(url)
    listed = s.call("GET", "inference_microservices").json["inference_microservices"]
    assert {x["id"] for x in listed} == {service["id"], second["id"]}
    by_state = s.call("GET", "inference_microservices?status=Error").json
    assert [x["id"] for x in by_state["inference_microservices"]] == [service["id"]]
    assert by_state["pagination_info"]["total_records"] == 1
    assert (
        s.call("GET", "inference_microservices?status=Ready").json["inference_microservices"] == []
    )
    assert_error(s.call("GET", "inference_microservices?status=Sleeping"), 400)
    assert s.call("DELETE", f"inference_microservices/{second['id']}").status_code == 200
    assert_error(s.call("GET", f"inference_microservices/{second['id']}:status"), 404)
    assert s.call("DELETE", f"inference_microservices/{service['id']}").status_code == 200
    assert s.call("DELETE", f"jobs/{parent['id']}").status_code == 200


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_bad_requests_get_clear_errors_and_lose_nothing(login, worker, store):
    s, other = login(), login("globex", user="bob")
    ws = workspace(s)
    pending = train(s, epochs=2, pace=0.5, workspace=ws)
    error = assert_error(
        s.call("POST", "inference_microservices:start", json={"parent_job_id": pending}), 400
    )
    assert "create this job once it is Done" in error["error_desc"]
    assert_error(
        s.call("POST", "inference_microservices:start", json={"parent_job_id": pending, "x": 1}),
        400,
    )
    # another org's job is not there for it
    assert_error(
        other.call("POST", "inference_microservices:start", json={"parent_job_id": pending}),
        404,
    )
    worker()
    parent = until_status(s, pending, "Done")
    traversal = assert_error(
        s.call(
            "POST",
            "inference_microservices:start",
            json={"parent_job_id": parent["id"], "model_path": "../../../etc/passwd"},
        ),
        400,
    )
    assert "outside the parent job's results" in traversal["error_desc"]

    # a model file that does not exist: Error with that reason, not a hang
    missing = start(s, parent["id"], model_path="/workspace/models/best_model.pth")
    failed = until(s, missing["id"], "Error")
    assert "does not exist" in failed["message"] and "before it was ready" in failed["message"]

    service = start(s, parent["id"], workspace=ws)
    until(s, service["id"], "Ready")
    call = f"inference_microservices/{service['id']}:inference"
    assert (
        "not base64"
        in assert_error(s.call("POST", call, json={"input": ["%%%"]}), 400)["error_desc"]
    )
    not_image = "data:image/png;base64," + base64.b64encode(b"plain words").decode()
    words = assert_error(s.call("POST", call, json={"input": [not_image]}), 400)["error_desc"]
    assert "the model server refused" in words and "cannot read image" in words
    huge = data_uri(b"\0" * 1_100_000)
    assert_error(s.call("POST", call, json={"input": [huge]}), 413)
    assert_error(s.call("POST", call, json={}), 400)
    both = {"input": [not_image], "media": "x.png"}
    assert_error(s.call("POST", call, json=both), 400)
    url = assert_error(s.call("POST", call, json={"media": "https://example.com/x.png"}), 400)
    assert "never fetched from a URL" in url["error_desc"]
    assert_error(s.call("POST", call, json={"media": "../../secrets.png"}), 404)
    assert_error(s.call("POST", call, json={"media": "aws://elsewhere/x.png"}), 400)
    assert_error(s.call("POST", call, json={"media": "inbox/none.png"}), 404)
    # another org sees nothing of it
    for method, path in (
        ("GET", f"inference_microservices/{service['id']}:status"),
        ("POST", f"inference_microservices/{service['id']}:stop"),
        ("DELETE", f"inference_microservices/{service['id']}"),
    ):
        assert_error(other.call(method, path), 404)
    assert_error(other.call("POST", call, json={"input": [not_image]}), 404)
    assert other.call("GET", "inference_microservices").json["inference_microservices"] == []
    # a plain job is not a service
    assert_error(s.call("GET", f"inference_microservices/{parent['id']}:status"), 404)
    # a running one cannot be deleted; it still answers after all that
    assert_error(s.call("DELETE", f"inference_microservices/{service['id']}"), 409)
    assert status(s, service["id"])["status"] == "Ready"
    ready = s.call("GET", "inference_microservices?status=Ready").json["inference_microservices"]
    assert [x["id"] for x in ready] == [service["id"]]  # not the one that failed
    served = status(s, service["id"])
    assert served["requests_served"] == 1 and "refused" in served["last_error"]


def test_an_idle_service_stops_and_one_never_healthy_is_an_error(login, worker, store):
    s = login()
    worker()
    parent = until_status(s, train(s, epochs=2), "Done")
    idle = start(s, parent["id"], idle_timeout_minutes=5)
    until(s, idle["id"], "Ready")
    # five minutes without a request, without waiting them out
    before = store.jobs.find(idle["id"])["serving"]["ready_since"] - 301
    store.db["jobs"].update_one({"_id": idle["id"]}, {"$set": {"serving.ready_since": before}})
    stopped = until(s, idle["id"], "Stopped")
    assert stopped["message"] == "stopped after 5 minutes without requests"

    never = start(s, parent["id"])
    # a server whose health check never answers (as if its path were wrong)
    store.db["jobs"].update_one(
        {"_id": never["id"]}, {"$set": {"serving.health_path": "/not-there"}}
    )
    wait_for(lambda: store.jobs.find(never["id"]).get("started_on"), 30, "the server runs")
    assert status(s, never["id"])["status"] == "Starting"
    started = store.jobs.find(never["id"])["started_on"]
    store.db["jobs"].update_one({"_id": never["id"]}, {"$set": {"started_on": started - 301}})
    failed = until(s, never["id"], "Error")
    assert "health check /not-there failing" in failed["message"], failed
