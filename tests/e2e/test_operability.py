"""What an operator's stack reads, from a real ``jobyard up`` with
``JOBYARD_LOG_FORMAT=json`` and both metrics ports: the API's and the worker's Prometheus
endpoints (through ``prometheus_client``'s multiprocess mode) with the figures a job moved,
every query of the Grafana dashboard naming a metric really exported, one request id
followed from the HTTP request into the worker's log, and no secret in any log line."""

from __future__ import annotations

import json
import re
import urllib.request
import uuid

import pytest

from jobyard import embedded
from jobyard.client import Client
from tests.e2e.conftest import ROOT, start_up

pytestmark = pytest.mark.e2e


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text: str = answer.read().decode()
    return text


def _value(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples having these labels."""
    total, found = 0.0, False
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    seen = "\n".join(line for line in text.splitlines() if line.startswith(name))
    assert found, f"no {name} {labels} in the scrape: {seen}"
    return total


def test_metrics_dashboard_and_one_request_followed_through_json_logs(tmp_path):
    api_metrics, worker_metrics = embedded.free_port(), embedded.free_port()
    env = {
        "JOBYARD_LOG_FORMAT": "json",
        "JOBYARD_METRICS_PORT": str(api_metrics),
        "JOBYARD_WORKER_METRICS_PORT": str(worker_metrics),
    }
    up = start_up(tmp_path / "data", embedded.free_port(), env)
    secret, key = f"hf_{uuid.uuid4().hex}", f"tlt_{uuid.uuid4().hex}"
    trace = f"trace-{uuid.uuid4().hex[:12]}"
    try:
        with Client(up.base_url, up.api_key or "", "demo") as jy:
            specs = jy.jobs.default_specs("train", network_arch="classification_pyt")
            specs["train"].update(num_epochs=2, min_epoch_seconds=0)
            body = {
                "kind": "experiment",
                "action": "train",
                "network_arch": "classification_pyt",
                "name": "observed",
                "specs": specs,
                "docker_env_vars": {"HF_TOKEN": secret},
                "encryption_key": key,
            }
            jy.session.login()
            request = urllib.request.Request(
                jy.session.org_url("jobs"),
                data=json.dumps(body).encode(),
                headers={
                    "Authorization": f"Bearer {jy.session._token}",  # noqa: SLF001
                    "X-Request-Id": trace,
                },
                method="POST",
            )
            with urllib.request.urlopen(request) as answer:
                assert answer.headers["X-Request-Id"] == trace
                job_id = json.loads(answer.read())["id"]
            generated = jy.session.request("GET", "jobs/count").headers["X-Request-Id"]
            assert re.fullmatch(r"[0-9a-f]{32}", generated)
            assert jy.jobs.get(job_id).wait(timeout=120, poll=0.3).status == "Done"

        api_text = _scrape(api_metrics)
        route = "/api/v2/orgs/<string:org_name>/jobs"
        assert _value(api_text, "jobyard_http_requests_total", route=route, status="201") >= 1
        assert _value(api_text, "jobyard_http_request_seconds_count", route=route) >= 1
        worker_text = _scrape(worker_metrics)
        assert _value(worker_text, "jobyard_jobs", state="Done", backend="process") >= 1
        assert _value(worker_text, "jobyard_reconcile_seconds_count", backend="process") > 0
        assert _value(worker_text, "jobyard_events_ingested_total") > 0
        assert _value(worker_text, "jobyard_log_bytes_ingested_total") > 0
        assert _value(worker_text, "jobyard_submit_to_running_seconds_count") >= 1
        assert _value(worker_text, "jobyard_queue_backlog", queue="process") >= 0
        assert 0 <= _value(worker_text, "jobyard_worker_heartbeat_age_seconds") < 60

        dashboard = json.loads((ROOT / "ops/grafana/dashboards/jobyard.json").read_text())
        queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        named = {n for q in queries for n in re.findall(r"\bjobyard_[a-z_]+", q)}
        exported = set(re.findall(r"^(jobyard_[a-z_]+)", api_text + worker_text, re.M))
        assert named and named <= exported, named - exported
    finally:
        up.stop()

    logs = sorted((tmp_path / "data" / "logs").glob("*.log"))
    assert {p.stem for p in logs} >= {"api", "worker"}
    everything = "".join(p.read_text(errors="replace") for p in logs)
    assert secret not in everything and key not in everything
    records = {}
    for path in logs:
        lines = [line for line in path.read_text().splitlines() if line.startswith("{")]
        records[path.stem] = [json.loads(line) for line in lines]
    assert any(r.get("request_id") == trace for r in records["api"]), "the access line"
    followed = [r for r in records["worker"] if r.get("request_id") == trace]
    assert followed and all(r["job_id"] == job_id for r in followed), records["worker"][-5:]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records["worker"])
