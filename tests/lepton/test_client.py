"""The REST lepton against the Lepton double: calls, pagination and error mapping."""

from __future__ import annotations

import socket

import pytest

from jobyard.backends.errors import BackendUnavailable, SubmitRejected
from jobyard.backends.lepton import client as client_module
from jobyard.backends.lepton.client import LeptonClient
from tests.helpers import wait_for
from tests.lepton.conftest import TOKEN, WORKSPACE


def body(job_id, command, **labels):
    return {
        "metadata": {"id": job_id, "labels": {"managed-by": "jobyard", **labels}},
        "spec": {"resource_shape": "cpu.small", "container": {"image": "x", "command": command}},
    }


def final_state(lepton, job_id, timeout=20):
    def check():
        job = lepton.get_job(job_id)
        state = job["status"]["state"]
        return state if state in ("Completed", "Failed", "Stopped") else None

    return wait_for(check, timeout, f"{job_id} finished")


def test_create_get_replicas_log_and_events(lepton, fake):
    job, created = lepton.create_job(body("hello-1", ["sh", "-c", "echo hi; exit 4"]))
    assert created and job["metadata"]["id"] == "hello-1"
    assert final_state(lepton, "hello-1") == "Failed"
    replicas = lepton.replicas("hello-1")
    assert [r["metadata"]["id"] for r in replicas] == ["hello-1-0-abcde"]
    assert lepton.replica_log("hello-1", "hello-1-0-abcde", 1024) == b"hi\n"
    assert lepton.replica_log("hello-1", "no-such-replica", 1024) is None
    assert lepton.events("hello-1")[0]["reason"] == "Created"
    assert lepton.get_job("missing") is None


def test_a_second_create_returns_the_existing_job(lepton, fake):
    first, created = lepton.create_job(body("same-1", ["true"]))
    again, created_again = lepton.create_job(body("same-1", ["false"]))
    assert created and not created_again
    assert again["metadata"]["id"] == "same-1"
    assert again["spec"]["container"]["command"] == ["true"]
    assert len(fake.calls("POST", "/jobs")) == 2


def test_list_pages_until_an_empty_page_and_filters_by_label(lepton, fake, monkeypatch):
    fake.capacity = 0  # nothing runs: the jobs only wait in the list
    monkeypatch.setattr(client_module, "PAGE_SIZE", 2)
    for i in range(5):
        lepton.create_job(body(f"page-{i}", ["true"], batch="b" if i % 2 else "a"))
    lepton.create_job({"metadata": {"id": "not-ours"}, "spec": {}})
    jobs = lepton.list_jobs(query="managed-by=jobyard")
    assert sorted(j["metadata"]["id"] for j in jobs) == [f"page-{i}" for i in range(5)]
    pages = [int(q["page"]) for _, _, q, _ in fake.calls("GET", "/jobs")]
    assert pages == [1, 2, 3, 4]  # 2 + 2 + 1, then the empty page
    odd = lepton.list_jobs(query="managed-by=jobyard,batch=b")
    assert sorted(j["metadata"]["id"] for j in odd) == ["page-1", "page-3"]


def test_stop_sends_sigterm_and_ends_stopped_then_delete_removes_it(lepton, fake):
    script = "trap 'echo term; exit 75' TERM; echo up; while :; do sleep 0.05; done"
    lepton.create_job(body("long-1", ["sh", "-c", script]))
    wait_for(lambda: lepton.replica_log("long-1", "long-1-0-abcde", 99) == b"up\n", 20, "up")
    assert lepton.stop_job("long-1")
    patch = fake.calls("PATCH", "/jobs/long-1")[-1]
    assert patch[3] == {"spec": {"stopped": True}}
    assert final_state(lepton, "long-1") == "Stopped"
    log = lepton.replica_log("long-1", "long-1-0-abcde", 99)
    assert log.startswith(b"up\n") and log.endswith(b"term\n")  # the trap ran
    assert lepton.delete_job("long-1")
    assert lepton.get_job("long-1") is None
    assert not lepton.delete_job("long-1") and not lepton.stop_job("long-1")


def test_a_wrong_token_is_a_clear_permanent_error_without_the_token(fake):
    wrong = LeptonClient(fake.url, "wrong-token-123", WORKSPACE)
    with pytest.raises(SubmitRejected) as raised:
        wrong.create_job(body("x-1", ["true"]))
    message = str(raised.value)
    assert message.startswith("Lepton rejected the token for workspace testws (HTTP 401)")
    assert "wrong-token-123" not in message and TOKEN not in message
    assert "wrong-token-123" not in repr(wrong)


def test_server_errors_and_an_unreachable_api_are_transient(lepton, fake):
    fake.fail_next = 1
    with pytest.raises(BackendUnavailable, match="HTTP 503 upstream unavailable"):
        lepton.list_jobs()
    assert lepton.list_jobs() == []
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connection refused
        down = LeptonClient(f"http://127.0.0.1:{port}/api/v2/workspaces/w", TOKEN, "w", 2.0)
        with pytest.raises(BackendUnavailable, match="unreachable"):
            down.get_job("x")


def test_a_refused_body_is_permanent_with_the_servers_words(lepton):
    with pytest.raises(SubmitRejected, match="HTTP 400 invalid job name"):
        lepton.create_job(body("Bad_Name", ["true"]))
