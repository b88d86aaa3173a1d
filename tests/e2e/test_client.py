"""The SDK and the CLI for people against a real ``jobyard up``: a job submitted, watched
to Done with its epochs counting up, its results downloaded; pages followed; errors as
their own classes; an expired token replaced; 503s and refused connections retried and
4xx never; and the CLI driven through a pseudo-terminal as a person would."""

from __future__ import annotations

import http.server
import json
import os
import pty
import select
import stat
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from jobyard import embedded
from jobyard.client import Client, errors
from jobyard.workloads import data, images
from tests.e2e.conftest import ROOT, Up, start_up
from tests.helpers import kill_runs

pytestmark = pytest.mark.e2e

TRAIN = {
    "kind": "experiment",
    "action": "train",
    "network_arch": "classification_pyt",
    "specs": {"train": {"num_epochs": 3, "min_epoch_seconds": 0.2}},
}


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    data = tmp_path_factory.mktemp("up") / "data"
    started = start_up(data, embedded.free_port())
    yield started
    started.stop()
    kill_runs(data)  # model servers do not end by themselves


@pytest.fixture
def jy(up: Up) -> Iterator[Client]:
    with Client(up.base_url, up.api_key or "", "demo", backoff=0.05) as client:
        yield client


def test_a_job_submitted_watched_to_done_and_downloaded(jy, tmp_path):
    job = jy.jobs.submit({**TRAIN, "name": "sdk-run"}, over_defaults=True)
    seen = []
    job.wait(timeout=120, poll=0.2, on_update=seen.append)
    assert job.status == "Done", job.doc["job_details"]
    epochs = [p.epoch for p in seen]
    assert epochs == sorted(epochs) and epochs[-1] == 3 and seen[-1].max_epoch == 3
    assert seen[-1].accuracy is not None and seen[-1].loss is not None
    assert "Epoch" in "".join(job.logs()) or "epoch" in "".join(job.logs()).lower()
    assert any(e.get("type") == "scalar" for e in job.events())
    written = job.download(tmp_path / "out.tar.gz", on_bytes=lambda done, total: None)
    with tarfile.open(tmp_path / "out.tar.gz") as tar:
        names = tar.getnames()
    assert written == (tmp_path / "out.tar.gz").stat().st_size and written > 0
    assert any(n.endswith("model_best.npz") for n in names), names


def test_a_model_published_listed_trained_from_and_removed(jy):
    ws = jy.workspaces.create({"name": "registry", "cloud_type": "local"})["id"]
    job = jy.jobs.submit({**TRAIN, "name": "sdk-publish", "workspace": ws}, over_defaults=True)
    job.wait(timeout=120, poll=0.2)
    model = job.publish(display_name="SDK digits", team="cv")
    assert (model["name"], model["version"], model["state"]) == ("sdk-digits", 1, "published")
    assert [m["id"] for m in jy.models.list(team="cv")] == [model["id"]]
    assert jy.models.get(model["id"])["sha256"] == model["sha256"]
    with pytest.raises(errors.Conflict):
        job.publish(display_name="SDK digits", team="cv")
    from_model = {k: v for k, v in TRAIN.items() if k != "network_arch"}
    warm = jy.jobs.submit({**from_model, "base_experiment_ids": [model["id"]]}, over_defaults=True)
    warm.wait(timeout=120, poll=0.2)
    assert warm.status == "Done" and warm.doc["base_experiment_ids"] == [model["id"]]
    assert [m["version"] for m in job.remove_published_model(team="cv")] == [1]
    assert list(jy.models.list(team="cv")) == []
    # and its model served: a digit of the packaged set answered with its label
    service = jy.services.start(job.id)
    assert jy.services.wait_ready(service["id"], timeout=60, poll=0.2)["status"] == "Ready"
    pixels, labels = data.load_digits()
    answer = jy.services.infer(service["id"], images=[images.png_of(pixels[0] * 16)])
    assert answer["predictions"][0]["label"] == labels[0]
    assert jy.services.stop(service["id"])["status"] in ("Stopping", "Stopped")


def test_automl_params_come_from_the_catalog(jy):
    found = jy.jobs.automl_params(network_arch="classification_pyt")
    assert found["metric"] == "val_accuracy" and "val_loss" in found["metrics"]
    rows = found["parameter_details"]
    assert "train.learning_rate" in [r["parameter"] for r in rows]
    one = jy.jobs.automl_params("train.momentum", base_experiment_id=found["base_experiment_id"])
    assert [r["parameter"] for r in one["parameter_details"]] == ["train.momentum"]
    with pytest.raises(errors.BadRequest):
        jy.jobs.automl_params("train.colour", network_arch="classification_pyt")


def test_lists_follow_pages_and_counts_agree(jy):
    for name in ("page-a", "page-b", "page-c"):
        jy.workspaces.create({"name": name, "cloud_type": "local"})
    names = [w["name"] for w in jy.workspaces.list(size=1)]
    assert {"page-a", "page-b", "page-c"} <= set(names) and len(names) == len(set(names))
    everything = [j.id for j in jy.jobs.list(size=1)]
    assert len(everything) == jy.jobs.count() == len(set(everything))


def test_errors_are_their_own_classes_and_an_expired_token_is_replaced(up, jy):
    with pytest.raises(errors.NotFound) as missing:
        jy.jobs.get("no-such-job")
    assert missing.value.error_code == 404 and "no-such-job" in missing.value.error_desc
    with pytest.raises(errors.BadRequest) as bad:
        jy.jobs.submit({"kind": "experiment", "action": "train", "timeout_minutes": -1})
    assert "timeout_minutes" in bad.value.errors
    with (
        Client(up.base_url, "nvapi-wrong", "demo") as wrong,
        pytest.raises(errors.Unauthorized) as refused,
    ):
        wrong.jobs.count()
    assert refused.value.error_code == 401
    jy.jobs.count()
    jy.session._token = "expired.or.revoked"  # noqa: SLF001 - what an expiry leaves behind
    assert jy.jobs.count() >= 0  # logged in again, once, on the 401


class Flaky(http.server.BaseHTTPRequestHandler):
    """A server that fails as an outage does: 503 twice on each path, then answers;
    /bad is a 400 every time. Counts what it was sent."""

    hits: dict[str, int] = {}

    def _answer(self) -> None:
        path = self.path.split("?")[0]
        Flaky.hits[path] = Flaky.hits.get(path, 0) + 1
        if path.endswith("/login"):
            status, body = 200, {"token": "t", "user_id": "u"}
        elif path.endswith("/bad"):
            status, body = 400, {"error_desc": "bad", "error_code": 400}
        elif Flaky.hits[path] <= 2:
            status, body = 503, {"error_desc": "try later", "error_code": 503}
        else:
            status, body = 200, {"count": 7}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 503:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


def test_503_and_refused_connections_are_retried_and_4xx_never():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with Client(base, "k", "o", backoff=0.01) as client:
            assert client.jobs.count() == 7
            assert Flaky.hits["/api/v2/orgs/o/jobs/count"] == 3
            with pytest.raises(errors.BadRequest):
                client.session.json("GET", "bad")
            assert Flaky.hits["/api/v2/orgs/o/bad"] == 1
    finally:
        server.shutdown()
        server.server_close()
    nowhere = f"http://127.0.0.1:{embedded.free_port()}"
    started = time.monotonic()
    with (
        Client(nowhere, "k", "o", retries=2, backoff=0.01) as closed,
        pytest.raises(errors.Unavailable, match="cannot reach"),
    ):
        closed.jobs.count()
    assert time.monotonic() - started < 10


def _listed(cli: list[str], env: dict[str, str], search: str) -> list[dict[str, Any]]:
    """``jobyard jobs list --search`` as JSON."""
    listed = subprocess.run(
        [*cli, "jobs", "list", "--search", search, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    found: list[dict[str, Any]] = json.loads(listed.stdout)
    return found


def _terminal(argv: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """Run a command on a pseudo-terminal, as from a person's shell; (exit code, screen)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        argv, stdin=follower, stdout=follower, stderr=follower, env=env, cwd=ROOT
    )
    os.close(follower)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the command is done
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(leader)
    return proc.wait(10), out.decode(errors="replace")


def test_the_cli_logs_in_submits_watches_lists_and_downloads(up, tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("NGC_API_KEY", "NGC_ORG_NAME")},
        "JOBYARD_CLIENT_CONFIG": str(tmp_path / "cfg" / "client.json"),
        "COLUMNS": "160",
        "TERM": "xterm",
    }
    cli = [sys.executable, "-m", "jobyard.cli"]
    code, screen = _terminal(
        [*cli, "login", "--url", up.base_url, "--key", up.api_key or "", "--org", "demo"], env
    )
    assert code == 0 and "logged in" in screen, screen
    saved = tmp_path / "cfg" / "client.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600

    (tmp_path / "job.yaml").write_text(yaml.safe_dump({**TRAIN, "name": "cli-run"}))
    code, screen = _terminal(
        [
            *cli,
            "jobs",
            "submit",
            "-f",
            str(tmp_path / "job.yaml"),
            "--set",
            "specs.train.num_epochs=2",
            "--watch",
            "--poll",
            "0.3",
        ],
        env,
    )
    assert code == 0, screen
    assert "epoch 2/2" in screen and "accuracy" in screen and "Done" in screen, screen

    jobs = _listed(cli, env, "cli-run")
    assert [j["name"] for j in jobs] == ["cli-run"] and jobs[0]["status"] == "Done"
    assert jobs[0]["specs"]["train"]["num_epochs"] == 2
    job_id = jobs[0]["id"]

    code, screen = _terminal([*cli, "jobs", "list", "--status", "Done"], env)
    assert code == 0 and "cli-run" in screen and "Done" in screen, screen
    code, screen = _terminal([*cli, "jobs", "download", job_id, "-o", str(tmp_path / "r.tgz")], env)
    assert code == 0 and (tmp_path / "r.tgz").stat().st_size > 0, screen
    code, screen = _terminal([*cli, "jobs", "logs", job_id], env)
    assert code == 0 and screen.strip(), screen
    with Client(up.base_url, up.api_key or "", "demo") as jy:
        ws = jy.workspaces.create({"name": "cli-registry", "cloud_type": "local"})["id"]
    publish = ["jobs", "publish", job_id, "--name", "CLI digits", "--team", "cli"]
    code, screen = _terminal([*cli, *publish, "--workspace", ws], env)
    assert code == 0 and "cli-digits" in screen and "published" in screen, screen
    code, screen = _terminal([*cli, "models", "list"], env)
    assert code == 0 and "cli-digits" in screen, screen
    code, screen = _terminal([*cli, *publish, "--workspace", ws], env)
    assert code == 1 and "error 409" in screen and "version 1" in screen, screen
    code, screen = _terminal([*cli, "jobs", "unpublish", job_id, "--team", "cli"], env)
    assert code == 0 and "removed" in screen, screen
    started = subprocess.run(
        [*cli, "services", "start", job_id, "--wait", "--poll", "0.3", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    service = json.loads(started.stdout)
    assert service["status"] == "Ready", service
    pixels, _ = data.load_digits()
    (tmp_path / "digit.png").write_bytes(images.png_of(pixels[0] * 16))
    code, screen = _terminal(
        [*cli, "services", "infer", service["id"], str(tmp_path / "digit.png")], env
    )
    assert code == 0 and '"label"' in screen, screen
    code, screen = _terminal([*cli, "services", "list"], env)
    assert code == 0 and service["id"][:8] in screen and "Ready" in screen, screen
    code, screen = _terminal([*cli, "services", "stop", service["id"]], env)
    assert code == 0 and ("Stopping" in screen or "Stopped" in screen), screen
    code, screen = _terminal(
        [*cli, "jobs", "automl-params", "--network-arch", "classification_pyt"], env
    )
    assert code == 0 and "train.learning_rate" in screen and "val_accuracy" in screen, screen
    automl = {
        "automl_enabled": True,
        "automl_algorithm": "bayesian",
        "automl_max_recommendations": 2,
    }
    search = {**TRAIN, "name": "cli-search", "automl_settings": automl}
    (tmp_path / "search.yaml").write_text(yaml.safe_dump(search))
    code, screen = _terminal(
        [
            *cli,
            "jobs",
            "submit",
            "-f",
            str(tmp_path / "search.yaml"),
            "--set",
            "specs.train.num_epochs=1",
            "--watch",
            "--poll",
            "0.3",
        ],
        env,
    )
    assert code == 0 and "Done" in screen, screen
    (search_id,) = [j["id"] for j in _listed(cli, env, "cli-search") if j["name"] == "cli-search"]
    code, screen = _terminal([*cli, "jobs", "trials", search_id], env)
    assert code == 0 and "bayesian: 2 of 2 ended" in screen and "finished" in screen, screen
    code, screen = _terminal([*cli, "jobs", "trials", job_id], env)
    assert code == 1 and "not an AutoML search" in screen, screen
    code, screen = _terminal([*cli, "jobs", "get", "no-such-job"], env)
    assert code == 1 and "error 404" in screen, screen
    code, screen = _terminal(
        [*cli, "jobs", "list"], {**env, "JOBYARD_CLIENT_CONFIG": "/nonexistent"}
    )
    assert code == 2 and "jobyard login" in screen, screen
