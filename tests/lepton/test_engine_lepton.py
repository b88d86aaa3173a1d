"""Jobs on a ``lepton`` workspace through the engine and the Lepton double: what only Lepton
has. The lifecycle every backend shares (train, pause/resume, cancel, timeout, the queueing
reason, a wrong token) is the contract suite's, tests/contract."""

from __future__ import annotations

import pytest
import redis

from jobyard.backends.lepton.backend import LeptonBackend
from jobyard.workers import engine
from jobyard.workers.celery_app import create_celery
from jobyard.workers.context import Context
from tests.integration.test_engine import train
from tests.lepton.conftest import lepton_workspace

pytestmark = pytest.mark.integration


def lepton_train(s, ws, epochs=3, pace=0.0, **overrides):
    return train(
        s, epochs, pace, workspace=ws, backend_details={"backend_type": "lepton"}, **overrides
    )


def test_a_hundred_lepton_jobs_are_reconciled_with_one_list_call(login, settings, store, fake):
    """Reconcile in this process so that the double can count the calls of one tick."""
    fake.capacity = 0  # queued on Lepton: nothing runs, and each job must say why
    s = login()
    ws = lepton_workspace(s, fake)
    ctx = Context(
        settings, store, redis.Redis.from_url(settings.redis_url), create_celery(settings)
    )
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
