"""Job and Pod objects, as real clusters return them, to run states with reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobyard.backends.base import RunState
from jobyard.backends.kubernetes import parse

CASES = Path(__file__).parent.parent / "data" / "kubernetes" / "status"


@pytest.mark.parametrize("case", sorted(p.stem for p in CASES.glob("*.json")))
def test_status_golden(case):
    doc = json.loads((CASES / f"{case}.json").read_text())
    status = parse.run_status(doc["job"], doc["pods"], "jy-j1-r1")
    expected = doc["expected"]
    assert status.state is RunState(expected["state"])
    assert status.exit_code == expected["exit_code"]
    assert status.reason == expected["reason"]
    if "started_at" in expected:
        assert status.started_at == expected["started_at"]


def test_there_are_golden_cases_for_every_pending_reason():
    names = {p.stem for p in CASES.glob("*.json")}
    assert {"unschedulable_gpu", "pulling", "image_pull_backoff", "no_pod_yet"} <= names


def test_pods_are_grouped_by_run_oldest_first():
    def pod(run, created):
        labels = {"jobyard.io/run-name": run}
        return {
            "metadata": {"name": f"{run}-{created}", "labels": labels, "creationTimestamp": created}
        }

    grouped = parse.by_run([pod("a", "2"), pod("b", "1"), pod("a", "1"), {"metadata": {}}])
    assert [p["metadata"]["name"] for p in grouped["a"]] == ["a-1", "a-2"]
    assert set(grouped) == {"a", "b"}


def test_a_pod_that_ends_as_the_job_lags_decides_the_state():
    doc = json.loads((CASES / "running.json").read_text())
    pod = doc["pods"][0]
    pod["status"]["phase"] = "Succeeded"
    pod["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 0}}
    assert parse.run_status(doc["job"], [pod], "jy-j1-r1").state is RunState.SUCCEEDED


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2026-11-25T00:00:01Z", 1795564801.0), ("", None), (None, None), ("garbage", None)],
)
def test_timestamps(value, expected):
    assert parse.timestamp(value) == expected
