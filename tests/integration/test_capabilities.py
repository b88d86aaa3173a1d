"""Capabilities are data that the API and the engine consult: a backend that cannot stop a
run gracefully gets no graceful pause promised, and its stops are kills."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import pytest
import redis as redis_lib

from jobyard.backends import registry
from jobyard.backends.base import (
    Backend,
    Capability,
    Handle,
    Offsets,
    Output,
    RunSpec,
    RunState,
    RunStatus,
)
from jobyard.workers import engine
from jobyard.workers.context import Context
from tests.helpers import assert_error, stored_job

pytestmark = pytest.mark.integration


class NoGrace(Backend):
    """Runs forever and can only be killed."""

    name: ClassVar[str] = "nograce"
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    def __init__(self) -> None:
        self.stops: list[bool] = []

    @classmethod
    def from_settings(cls, settings: Any, config: Any) -> NoGrace:
        return cls()

    def submit(self, spec: RunSpec) -> Handle:
        return Handle(self.name, spec.name, {})

    def poll(self, handles: Sequence[Handle]) -> dict[str, RunStatus]:
        return {h.name: RunStatus(RunState.RUNNING, started_at=1.0) for h in handles}

    def read_output(self, requests: Sequence[tuple[Handle, Offsets]], max_bytes: int) -> Any:
        return {h.name: Output() for h, _ in requests}

    def stop(self, handle: Handle, graceful: bool) -> None:
        self.stops.append(graceful)

    def cleanup(self, handle: Handle) -> None:
        return None


@pytest.fixture(autouse=True)
def nograce(monkeypatch):
    path = f"{__name__}:NoGrace.from_settings"
    monkeypatch.setitem(registry.BACKENDS, "nograce", (path, ""))


def _running_job(store) -> str:
    job = {"_id": stored_job(store, backend="nograce")}
    handle = Handle("nograce", f"jy-{job['_id']}-r1", {}).to_doc()
    store.db["jobs"].update_one(
        {"_id": job["_id"]}, {"$set": {"status": "Running", "handle": handle, "submitted": True}}
    )
    return str(job["_id"])


def test_a_graceful_pause_is_refused_where_the_backend_cannot_honour_it(login, store):
    s = login()
    job_id = _running_job(store)
    store.db["jobs"].update_one({"_id": job_id}, {"$set": {"org": s.org}})
    body = assert_error(s.call("POST", f"jobs/{job_id}:pause", json={"graceful": True}), 409)
    assert "backend nograce cannot stop a run gracefully" in body["error_desc"]
    assert '{"graceful": false}' in body["error_desc"]
    assert store.jobs.find(job_id)["status"] == "Running"
    abrupt = s.call("POST", f"jobs/{job_id}:pause", json={"graceful": False})
    assert abrupt.status_code == 200 and abrupt.json["status"] == "Pausing"


def test_the_engine_kills_where_it_cannot_stop_gracefully(settings, store, redis_url):
    job_id = _running_job(store)
    store.jobs.request_cancel("acme", job_id)
    ctx = Context(settings, store, redis_lib.Redis.from_url(redis_url), celery=None)
    backend = NoGrace()
    ctx.resources.install("nograce", backend)
    engine.reconcile(ctx, "nograce")
    assert backend.stops == [False]
    stop = store.jobs.find(job_id)["stop"]
    assert stop["reason"] == "cancel" and stop["killed_at"] is not None
