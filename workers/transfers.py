"""A job's results copied to its workspace as they appear, so its artifacts
outlive the backend that ran it (seed 000: "pushes the action artifacts, like
training checkpoints, to the provided cloud storage").

Reconcile calls ``schedule`` (its one hook here) with the jobs it looked at;
an upload task then copies every result file that is new or changed since
the last upload (a per-file manifest in ``job_uploads`` says what went up) to
``results/<job_id>/`` in the workspace, publishing progress in
``job_details.transfer`` as it goes. While a job runs this happens at most
every ``THROTTLE_SECONDS``; once it has finished (or paused), always, and the
job is then marked ``artifacts.complete``. Uploads of one job never overlap
(a Redis lease), and a copy interrupted midway is simply redone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import redis
from kombu.exceptions import OperationalError

from jobyard.backends.base import Backend, Handle, ResultFile
from jobyard.backends.errors import WorkspaceMissing
from jobyard.backends.storage import Storage, StorageNotSupported
from jobyard.backends.storage.factory import stores_results
from jobyard.backends.storage.progress import Progress
from jobyard.schemas.job import ACTIVE_STATES, FINAL_STATES
from jobyard.store.errors import StoreError
from jobyard.store.timeutil import utcnow
from jobyard.workers.celery_app import MAINTENANCE_QUEUE
from jobyard.workers.context import Context
from jobyard.workers.locks import Renewable

logger = logging.getLogger(__name__)

TASK = "jobyard.upload_results"
THROTTLE_SECONDS = 10.0
PUBLISH_SECONDS = 0.5
LEASE_SECONDS = 900.0
ACTIVE = frozenset(s.value for s in ACTIVE_STATES)
FINAL = frozenset(s.value for s in FINAL_STATES)


def results_prefix(job_id: str) -> str:
    return f"results/{job_id}"


def settled(status: str) -> bool:
    """No run is writing results any more: upload everything now."""
    return status not in ACTIVE


def schedule(ctx: Context, jobs: Sequence[Mapping[str, Any]]) -> int:
    """Reconcile hook: ask for uploads of the jobs that have a workspace. A copy that
    cannot be asked for now (Redis or MongoDB unreachable) is asked for at the next
    reconcile; anything else is a bug and propagates."""
    try:
        return _schedule(ctx, jobs)
    except (redis.RedisError, OperationalError, StoreError):
        logger.warning("result uploads not scheduled this time", exc_info=True)
        return 0


def _schedule(ctx: Context, jobs: Sequence[Mapping[str, Any]]) -> int:
    ids = [j["_id"] for j in jobs if j.get("workspace") and j.get("handle")]
    if not ids:
        return 0
    sent = 0
    for job_id, state in ctx.store.jobs.statuses(ids).items():
        final = settled(state)
        throttle = f"jobyard:upload-asked:{job_id}"
        if not final and not ctx.redis.set(throttle, 1, nx=True, px=int(THROTTLE_SECONDS * 1000)):
            continue
        ctx.celery.send_task(TASK, args=[job_id, final], queue=MAINTENANCE_QUEUE)
        sent += 1
    return sent


def _temporary(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.startswith(".") or name.endswith((".tmp", ".part"))


def _storage(ctx: Context, workspace_id: str) -> Storage:
    """Where the job's results go; StorageNotSupported when its workspace keeps none
    (SLURM, Azure for now, or a local workspace without a path of its own)."""
    workspace = ctx.resources.workspace(workspace_id)
    if not stores_results(workspace):
        raise StorageNotSupported(f"workspace {workspace_id} has no storage for results")
    return ctx.resources.storage(workspace)


def changed(
    files: Sequence[ResultFile], uploaded: Mapping[str, tuple[int, float]]
) -> list[ResultFile]:
    """Files not uploaded yet, or changed since (size or time)."""
    return [
        f for f in files if not _temporary(f.path) and uploaded.get(f.path) != (f.size, f.modified)
    ]


class ProgressPublisher:
    """Writes the progress into the job document, at most every PUBLISH_SECONDS, and
    renews the lease of the copy (if any) each time, so a long copy keeps it."""

    def __init__(
        self, ctx: Context, job_id: str, progress: Progress, lease: Renewable | None = None
    ) -> None:
        self._jobs = ctx.store.jobs
        self._job_id = job_id
        self.progress = progress
        self._lease = lease
        self._last = 0.0

    def moved(self, count: int) -> None:
        self.progress.moved(count)
        self.publish()

    def publish(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= PUBLISH_SECONDS:
            self._last = now
            snapshot = {**self.progress.snapshot(now), "updated_on": utcnow()}
            self._jobs.set_transfer(self._job_id, snapshot)
            if self._lease is not None:
                self._lease.renew()


def _copy(
    ctx: Context,
    job: Mapping[str, Any],
    storage: Storage,
    backend: Backend,
    handle: Handle,
    todo: Sequence[ResultFile],
    lease: Renewable,
) -> None:
    """Upload ``todo`` one file after another, recording each in the manifest."""
    job_id = job["_id"]
    progress = Progress("upload", len(todo), sum(f.size for f in todo), time.monotonic())
    publisher = ProgressPublisher(ctx, job_id, progress, lease)
    for item in todo:
        progress.begin_file(item.path, item.size)
        publisher.publish(force=True)
        with backend.open_result(handle, item.path) as stream:
            key = f"{results_prefix(job_id)}/{item.path}"
            storage.upload(key, stream, item.size, publisher.moved)
        ctx.store.uploads.record(job_id, job["org"], item.path, item.size, item.modified)
        progress.end_file()
    publisher.publish(force=True)


def _mark_complete(ctx: Context, job: Mapping[str, Any], files: Sequence[ResultFile]) -> None:
    artifacts = {
        "workspace": job["workspace"],
        "prefix": results_prefix(job["_id"]),
        "complete": True,
        "files": len(files),
        "bytes": sum(f.size for f in files),
        "uploaded_on": utcnow(),
    }
    ctx.store.jobs.set_artifacts(job["_id"], artifacts)


def upload(ctx: Context, job_id: str, final: bool) -> str:
    """Copy the job's new or changed result files to its workspace."""
    lease = ctx.lease(f"upload:{job_id}", LEASE_SECONDS)
    if lease is None:
        return "busy"
    try:
        job = ctx.store.jobs.find(job_id)
        if job is None or not job.get("workspace") or not job.get("handle"):
            return "skipped"
        try:
            storage = _storage(ctx, job["workspace"])
        except StorageNotSupported:
            return "no storage"  # e.g. a SLURM workspace: results stay on the cluster
        except WorkspaceMissing:
            return "no workspace"
        handle = Handle.from_doc(job["handle"])
        backend = ctx.backend(job["backend"])
        files = backend.list_results(handle)
        todo = changed(files, ctx.store.uploads.uploaded(job_id))
        if todo:
            _copy(ctx, job, storage, backend, handle, todo, lease)
        if final and job["status"] in FINAL:  # a paused job will write more
            _mark_complete(ctx, job, files)
        logger.info("job %s: %d result files uploaded", job_id, len(todo))
        return f"uploaded {len(todo)}"
    finally:
        lease.release()
