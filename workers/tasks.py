"""Celery tasks: ids in, one engine call, nothing waited for."""

from __future__ import annotations

from typing import Any

from celery import shared_task, signals

from jobyard.backends.errors import BackendError, BackendUnavailable
from jobyard.backends.storage import StorageError
from jobyard.workers import engine, logs, maintenance, telemetry, transfers
from jobyard.workers.context import context_for
from jobyard.workers.enqueue import DISPATCH, DISPATCH_TURN, RECONCILE, STAGE, TICK
from jobyard.workers.retry import backoff
from jobyard.workers.turns import Turns

STAGE_TIME_LIMIT = 6 * 3600  # a large dataset copy; the claim is renewed while it runs


def _retry_or_fail(
    task: Any, job_id: str, error: BackendUnavailable, args: list[Any] | None = None
) -> str:
    """Retry a transient failure with backoff, or end the job Error once retries are used."""
    ctx = context_for(task.app)
    retries = task.request.retries
    if retries >= ctx.settings.submit_retries:
        engine.fail(ctx, job_id, f"backend unavailable after {retries} retries: {error}")
        return "failed"
    raise task.retry(args=args, exc=error, countdown=backoff(retries)) from error


@shared_task(bind=True, name=DISPATCH, max_retries=None)
def dispatch(self: Any, job_id: str) -> str:
    try:
        return engine.dispatch(context_for(self.app), job_id)
    except BackendUnavailable as e:
        return _retry_or_fail(self, job_id, e)


@shared_task(bind=True, name=DISPATCH_TURN, max_retries=None)
def dispatch_turn(self: Any, queue: str, job_id: str | None = None) -> str:
    """Dispatch the job whose turn it is on ``queue`` (``workers.turns``); a retry names
    the job it is for, which keeps its place."""
    ctx = context_for(self.app)
    request_id = None
    if job_id is None:
        turn = Turns(ctx.redis).take(queue)
        if turn is None:
            return "no job waiting"  # a turn sent twice, or its job taken by the tick's
        job_id, request_id = turn.job_id, turn.request_id
    with logs.bound(job_id=job_id, request_id=request_id):
        try:
            return engine.dispatch(ctx, job_id)
        except BackendUnavailable as e:
            return _retry_or_fail(self, job_id, e, args=[queue, job_id])


@shared_task(
    bind=True,
    name=STAGE,
    max_retries=None,
    time_limit=STAGE_TIME_LIMIT,
    soft_time_limit=STAGE_TIME_LIMIT - 60,
)
def stage(self: Any, job_id: str) -> str:
    """Copy a job's datasets before its run is submitted (long: its own time limit)."""
    try:
        return engine.stage(context_for(self.app), job_id)
    except BackendUnavailable as e:
        return _retry_or_fail(self, job_id, e)


@shared_task(bind=True, name=RECONCILE)
def reconcile(self: Any, backend: str) -> int:
    with telemetry.RECONCILE_SECONDS.labels(backend).time():
        return engine.reconcile(context_for(self.app), backend)


@shared_task(bind=True, name=TICK)
def tick(self: Any) -> dict[str, int]:
    return engine.tick(context_for(self.app))


@shared_task(bind=True, name=maintenance.TASK, time_limit=6 * 3600, soft_time_limit=6 * 3600 - 60)
def run_maintenance(self: Any, op_id: str) -> str:
    """A backup or restore: long, so it has its own queue and time limit."""
    ctx = context_for(self.app)
    return maintenance.run(ctx, op_id)


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
        raise self.retry(exc=e, countdown=backoff(self.request.retries)) from e
    if outcome == "busy" and final:
        raise self.retry(countdown=backoff(self.request.retries, base=5.0))
    return outcome


_BOUND: dict[str, Any] = {}  # task id -> its log context, entered before it runs


@signals.task_prerun.connect
def _bind_context(task_id: str = "", task: Any = None, args: Any = (), **_: Any) -> None:
    """The task's log context: its id, the request id the API sent with it, and the job
    or backend it is about."""
    request = getattr(task, "request", None)
    headers = getattr(request, "headers", None) or {}
    request_id = getattr(request, "request_id", None) or headers.get("request_id")
    about = str(args[0]) if args else None
    name = getattr(task, "name", "")
    if name == DISPATCH_TURN:
        request_id = None  # a turn may take another request's job: bound when it is taken
    context = logs.bound(
        task_id=task_id,
        request_id=request_id,
        job_id=about if name in (DISPATCH, STAGE) else None,
        backend=about if name == RECONCILE else None,
    )
    context.__enter__()
    _BOUND[task_id] = context


@signals.task_postrun.connect
def _unbind_context(task_id: str = "", **_: Any) -> None:
    context = _BOUND.pop(task_id, None)
    if context is not None:
        context.__exit__(None, None, None)
