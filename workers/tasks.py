"""Celery tasks: ids in, one engine call, nothing waited for."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from jobyard.backends.errors import BackendError, BackendUnavailable
from jobyard.backends.storage import StorageError
from jobyard.workers import engine, maintenance, transfers
from jobyard.workers.context import context_for
from jobyard.workers.enqueue import DISPATCH, RECONCILE, TICK


@shared_task(bind=True, name=DISPATCH, max_retries=None)
def dispatch(self: Any, job_id: str) -> str:
    ctx = context_for(self.app)
    try:
        return engine.dispatch(ctx, job_id)
    except BackendUnavailable as e:
        if self.request.retries >= ctx.settings.submit_retries:
            engine.fail(
                ctx, job_id, f"backend unavailable after {self.request.retries} retries: {e}"
            )
            return "failed"
        raise self.retry(exc=e, countdown=min(2**self.request.retries, 60)) from e


@shared_task(bind=True, name=RECONCILE)
def reconcile(self: Any, backend: str) -> int:
    return engine.reconcile(context_for(self.app), backend)


@shared_task(bind=True, name=TICK)
def tick(self: Any) -> dict[str, int]:
    return engine.tick(context_for(self.app))


@shared_task(bind=True, name=maintenance.TASK, time_limit=6 * 3600, soft_time_limit=6 * 3600 - 60)
def run_maintenance(self: Any, op_id: str) -> str:
    """A backup or restore: long, so it has its own queue and time limit."""
    ctx = context_for(self.app)
    return maintenance.run(ctx.store, ctx.settings.data_dir, op_id)


@shared_task(
    bind=True,
    name=transfers.TASK,
    max_retries=30,
    time_limit=4 * 3600,
    soft_time_limit=4 * 3600 - 60,
)
def upload_results(self: Any, job_id: str, final: bool = False) -> str:
    """Copy a job's new results to its workspace; the last copy of a finished job
    is retried until it is made (an earlier copy may still hold the job's lease)."""
    ctx = context_for(self.app)
    try:
        outcome = transfers.upload(ctx, job_id, final)
    except (StorageError, BackendError) as e:
        if not final:
            return f"failed: {e}"  # the next reconcile asks again
        raise self.retry(exc=e, countdown=min(2**self.request.retries, 60)) from e
    if outcome == "busy" and final:
        raise self.retry(countdown=5)
    return outcome
