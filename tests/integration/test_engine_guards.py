"""The engine's guards against crashes and stale workers, with real MongoDB and Redis:
leases only their owner releases, a cap on dispatches that keep dying, and programming
errors that surface instead of passing for a refused submit."""

from __future__ import annotations

import time

import pytest
import redis as redis_lib

from jobyard.workers import engine, locks
from jobyard.workers.context import Context
from tests.helpers import stored_job

pytestmark = pytest.mark.integration


@pytest.fixture
def ctx(settings, store, redis_url):
    client = redis_lib.Redis.from_url(redis_url)
    client.flushall()
    return Context(settings.replace(dispatch_attempts=3), store, client, celery=None)


def _job(store) -> str:
    return stored_job(store)


def test_a_lease_that_ran_out_cannot_release_the_next_holders(ctx):
    first = ctx.lease("reconcile:process", 0.2)
    assert first is not None
    assert ctx.lease("reconcile:process", 5) is None  # held
    time.sleep(0.3)  # the first holder stalls past its lease
    second = ctx.lease("reconcile:process", 5)
    assert second is not None
    assert first.release() is False  # compare-and-delete: not its lock any more
    assert first.renew() is False
    assert ctx.lease("reconcile:process", 5) is None  # the second keeps it
    assert ctx.redis.get(locks.PREFIX + "reconcile:process") == second.token.encode()
    assert second.release() is True
    assert ctx.lease("reconcile:process", 5) is not None


def test_a_kept_lease_outlives_its_length_while_held_and_ends_with_its_holder(ctx):
    lease = ctx.lease("reconcile:process", 0.3)
    assert lease is not None
    with locks.kept(lease, lease.seconds):
        time.sleep(1.0)  # three lengths of work: renewed meanwhile
        assert ctx.lease("reconcile:process", 5) is None
    time.sleep(0.4)  # nobody renews it now: as if its holder had died
    assert ctx.lease("reconcile:process", 5) is not None


def test_a_dispatch_that_keeps_dying_ends_the_job_with_the_reason(ctx, store):
    job_id = _job(store)
    # three earlier dispatches claimed the job and died before submitting
    store.db["jobs"].update_one({"_id": job_id}, {"$set": {"dispatch_attempts": 3}})
    assert engine.dispatch(ctx, job_id) == "failed"
    job = store.jobs.find(job_id)
    assert job["status"] == "Error"
    message = job["job_details"]["detailed_status"]["message"]
    assert "dispatch failed: 3 attempts to submit run 1 died" in message


def test_a_programming_error_in_dispatch_is_raised_not_reported_as_a_refused_submit(
    ctx, store, monkeypatch
):
    job_id = _job(store)

    def broken(job):
        raise KeyError("a bug")

    monkeypatch.setattr(store.catalog, "for_job", broken)
    with pytest.raises(KeyError, match="a bug"):
        engine.dispatch(ctx, job_id)  # Celery logs it with its traceback
    job = store.jobs.find(job_id)
    assert job["status"] == "Pending"  # the tick tries again once the claim expires
    assert "submit failed" not in job["job_details"]["detailed_status"]["message"]


def test_a_job_nothing_can_run_is_a_refused_submit(ctx, store):
    job_id = _job(store)
    store.db["jobs"].update_one(
        {"_id": job_id}, {"$set": {"network_arch": "rtdetr", "base_experiment_ids": []}}
    )
    assert engine.dispatch(ctx, job_id) == "failed"
    message = store.jobs.find(job_id)["job_details"]["detailed_status"]["message"]
    assert message.startswith("submit failed: no base experiment runs network_arch 'rtdetr'")
