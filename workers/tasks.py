"""Celery tasks: ids in, one engine call, nothing waited for."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from backends.errors import BackendUnavailable
from workers import engine
from workers.context import context_for
from workers.enqueue import DISPATCH, RECONCILE, TICK


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
