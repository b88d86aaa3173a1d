"""Duplicate prevention (atomic, by fingerprint), retry and bulk cancel."""

from __future__ import annotations

import threading

import pytest

from jobyard.schemas.job import JobState
from jobyard.store.catalog import REFERENCE
from tests.helpers import assert_error, on_both_servers

pytestmark = [pytest.mark.integration, on_both_servers]


def body(**overrides):
    return {
        "kind": "experiment",
        "network_arch": "classification_pyt",
        "action": "train",
        "name": "same",
        "specs": REFERENCE.default_spec("train"),
        **overrides,
    }


def test_an_identical_job_is_blocked_naming_the_existing_one(login):
    s = login()
    first = s.call("POST", "jobs", json=body()).json["id"]
    error = assert_error(s.call("POST", "jobs", json=body()), 409)
    assert error["errors"]["existing_id"] == first and first in error["error_desc"]
    assert s.call("POST", "jobs", json=body(name="other")).status_code == 201
    assert s.call("POST", "jobs", json=body(force_create=True)).status_code == 201
    assert s.call("GET", "jobs?name=same").json["pagination_info"]["total_records"] == 2


def test_identical_concurrent_creates_make_one_job(login):
    s = login()
    codes: list[int] = []
    lock = threading.Lock()

    def create() -> None:
        response = s.call("POST", "jobs", json=body())
        with lock:
            codes.append(response.status_code)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [201] + [409] * 7
    assert s.call("GET", "jobs").json["pagination_info"]["total_records"] == 1


def test_an_identical_workspace_is_blocked_unless_forced(login):
    s = login()
    ws = {"name": "w", "cloud_type": "local"}
    first = s.call("POST", "workspaces", json=ws).json["id"]
    assert (
        assert_error(s.call("POST", "workspaces", json=ws), 409)["errors"]["existing_id"] == first
    )
    assert s.call("POST", "workspaces", json={**ws, "force_create": True}).status_code == 201
    other = s.call("POST", "workspaces", json={"name": "x", "cloud_type": "local"}).json["id"]
    assert_error(s.call("PATCH", f"workspaces/{other}", json={"name": "w"}), 409)


def test_retry_creates_a_new_job_with_the_same_parameters(login, store):
    s = login()
    job = s.call("POST", "jobs", json=body(timeout_minutes=7)).json
    assert_error(s.call("POST", f"jobs/{job['id']}:retry"), 409)  # still Pending
    s.call("POST", f"jobs/{job['id']}:cancel")
    store.jobs.transition(job["id"], JobState.CANCELED)
    again = s.call("POST", f"jobs/{job['id']}:retry")
    assert again.status_code == 201
    assert again.json["id"] != job["id"] and again.json["status"] == "Pending"
    for key in ("specs", "name", "timeout_minutes", "action", "network_arch"):
        assert again.json[key] == job[key]


def test_bulk_cancel_reports_each_job(login, store):
    s = login()
    ws = s.call("POST", "workspaces", json={"name": "w", "cloud_type": "local"}).json["id"]
    in_ws = [
        s.call("POST", "jobs", json=body(name=f"j{i}", workspace=ws)).json["id"] for i in range(2)
    ]
    outside = s.call("POST", "jobs", json=body(name="elsewhere")).json["id"]
    results = s.call("POST", "jobs:cancel", json={"workspace": ws}).json["results"]
    assert sorted(r["id"] for r in results) == sorted(in_ws)
    assert {r["status"] for r in results} == {"Canceling"}
    listed = s.call("POST", "jobs:cancel", json={"job_ids": [in_ws[0], outside, "missing"]}).json
    assert [r["status"] for r in listed["results"]] == ["refused", "Canceling", "not_found"]
    assert_error(s.call("POST", "jobs:cancel", json={}), 400)
    assert_error(s.call("POST", "jobs:cancel", json={"job_ids": [outside], "workspace": ws}), 400)
