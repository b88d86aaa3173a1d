"""A job's datasets copied to where its run can read them, before the run is submitted.

Paths the run's machines see are passed through untouched; object prefixes (from a
dataset in a workspace, or an ``aws://`` / ``seaweedfs://`` URI in the job's own
workspace bucket) and public URLs are copied into the backend's staging directory, with
the same progress fields as result uploads (``job_details.transfer``). A re-dispatch
skips files already there with the right size, so staging is idempotent.

Copying is its own task (``workers.tasks.stage``), not part of dispatch: a copy may take
twenty minutes, longer than a dispatch may run. It renews the job's dispatch claim as it
goes, so the tick does not dispatch the job again meanwhile, and dispatches the job once
the copy is complete. ``plan`` (what the run's directories are) costs no copying, so the
dispatch that submits the run computes the same directories again.
"""

from __future__ import annotations

import os
import posixpath
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

from jobyard.backends.base import Backend, Handle, RunSpec
from jobyard.backends.errors import BackendUnavailable, SubmitRejected
from jobyard.backends.storage import Storage, StorageError, bucket_of
from jobyard.backends.storage.errors import StorageUnreachable
from jobyard.backends.storage.progress import Progress
from jobyard.backends.storage.url import fetch
from jobyard.schemas.catalog import NoWorkload
from jobyard.schemas.staging import (
    PRETRAINED_ACTIONS,
    PRETRAINED_VARIABLE,
    Source,
    environment,
    sources,
)
from jobyard.store.errors import NotFound
from jobyard.workers.context import Context
from jobyard.workers.locks import Renewable
from jobyard.workers.transfers import ProgressPublisher

URL_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Copy:
    """One slot to fill: from an object prefix (``storage``) or a URL, into ``target``."""

    target: Path
    source: Source
    storage: Storage | None = None


@dataclass
class Plan:
    env: dict[str, str] = field(default_factory=dict)  # the JY_*_DATASET_DIR(S) variables
    copies: list[Copy] = field(default_factory=list)


def plan(ctx: Context, job: Mapping[str, Any], backend: Backend, spec: RunSpec) -> Plan:
    """Where each of the job's datasets (and a published model's weights) will be for the
    run, and what must be copied."""
    slots = sources(job)
    weights = _pretrained(ctx, job)
    if not slots and weights is None:
        return Plan()
    root = backend.staging_dir(spec)
    dirs: dict[str, str] = {}
    copies: list[Copy] = []
    for source in slots:
        resolved = _resolve(ctx, job, source)
        if resolved.kind == "path":
            dirs[source.slot] = resolved.value
            continue
        if root is None:
            raise SubmitRejected(
                f"{source.field}: backend {backend.name} cannot stage {_shown(resolved)}; "
                "give a path its machines see (file:// or lustre://)"
            )
        target = Path(root) / source.slot
        dirs[source.slot] = str(target)
        storage = None if resolved.kind == "url" else _storage(ctx, job, resolved)
        copies.append(Copy(target, resolved, storage))
    env = environment(dirs, slots)
    if weights is not None:
        source, checkpoint = weights
        if root is None:
            raise SubmitRejected(
                f"base experiment {job.get('catalog_id')} is a published model whose weights "
                f"are in workspace storage; backend {backend.name} has no staging directory "
                "to copy them to (train from it on a backend that has one: process)"
            )
        target = Path(root) / source.slot
        copies.append(Copy(target, source, _storage(ctx, job, source)))
        env[PRETRAINED_VARIABLE] = str(target / checkpoint)
    return Plan(env, copies)


def _pretrained(ctx: Context, job: Mapping[str, Any]) -> tuple[Source, str] | None:
    """The published model a fresh train job starts from: its folder in the workspace
    it was published to, and the checkpoint's name in it."""
    if job.get("action") not in PRETRAINED_ACTIONS:
        return None
    try:
        entry = ctx.store.catalog.for_job(job)
    except NoWorkload as e:
        raise SubmitRejected(str(e)) from e
    weights = entry.pretrained
    if not weights:
        return None
    source = Source(
        "pretrained",
        "base_experiment_ids",
        "object",
        str(weights["location"]),
        workspace=str(weights["workspace"]),
    )
    return source, str(weights["checkpoint"])


def copy(ctx: Context, job_id: str, copies: list[Copy], lease: Renewable) -> None:
    """Copy every slot, renewing ``lease`` (the job's claim) as progress is published."""
    try:
        listed = [(c, _listing(c)) for c in copies]
        files = sum(len(objects) or 1 for _, objects in listed)
        size = sum(o.size for _, objects in listed for o in objects)
        publisher = ProgressPublisher(
            ctx, job_id, Progress("download", files, size, time.monotonic()), lease
        )
        for item, objects in listed:
            if item.storage is None:
                _fetch_url(ctx, item, publisher)
            else:
                _copy_objects(item, item.storage, objects, publisher)
        publisher.publish(force=True)
    except StorageUnreachable as e:
        raise BackendUnavailable(f"datasets: {e}") from e
    except StorageError as e:
        raise SubmitRejected(f"datasets: {e}") from e
    except OSError as e:
        raise BackendUnavailable(f"datasets: cannot write the staging directory: {e}") from e


def _listing(item: Copy) -> list[Any]:
    if item.storage is None:
        return []
    prefix = item.source.value.strip("/")
    objects = list(item.storage.list(prefix))
    if not objects:
        raise SubmitRejected(f"{item.source.field}: nothing under {_shown(item.source)}")
    return objects


def _copy_objects(
    item: Copy, storage: Storage, objects: list[Any], publisher: ProgressPublisher
) -> None:
    prefix = item.source.value.strip("/")
    for obj in objects:
        relative = posixpath.relpath(obj.key, prefix) if prefix else obj.key
        dest = item.target / relative
        publisher.progress.begin_file(relative, obj.size)
        if not (dest.is_file() and dest.stat().st_size == obj.size):
            _atomic(dest, partial(storage.download, obj.key, progress=publisher.moved))
        publisher.progress.end_file()
        publisher.publish()


def _fetch_url(ctx: Context, item: Copy, publisher: ProgressPublisher) -> None:
    url = item.source.value
    dest = item.target / (posixpath.basename(url.split("?")[0]) or "data")
    publisher.progress.begin_file(dest.name, 0)
    if not dest.is_file():
        allow = ctx.settings.fetch_allow_hosts
        fetched = partial(
            fetch, url, allow_hosts=allow, timeout=URL_TIMEOUT_SECONDS, progress=publisher.moved
        )
        _atomic(dest, fetched)
    publisher.progress.end_file()
    publisher.publish()


def _resolve(ctx: Context, job: Mapping[str, Any], source: Source) -> Source:
    """A dataset id becomes the workspace prefix or URL it names."""
    if source.kind != "dataset":
        return source
    try:
        dataset = ctx.store.datasets.get(job["org"], source.value)
    except NotFound as e:
        raise SubmitRejected(f"{source.field}: {e}") from e
    if dataset.get("source_job"):
        return _job_output(ctx, job, source, dataset["source_job"])
    if dataset.get("url"):
        return Source(source.slot, source.field, "url", str(dataset["url"]))
    if not dataset.get("workspace") or dataset.get("cloud_file_path") is None:
        raise SubmitRejected(f"{source.field}: dataset {source.value} has no data to read")
    return Source(
        source.slot,
        source.field,
        "object",
        str(dataset["cloud_file_path"]),
        workspace=str(dataset["workspace"]),
    )


def _job_output(
    ctx: Context, job: Mapping[str, Any], source: Source, origin: Mapping[str, Any]
) -> Source:
    """A dataset a dataset job produced: its copy in the producing job's workspace once
    that is complete, else the results directory itself, which runs of the same backend
    can read where they are."""
    producer = ctx.store.jobs.find(str(origin["job_id"]))
    if producer is None or not producer.get("handle"):
        raise SubmitRejected(f"{source.field}: the job that made dataset {source.value} is gone")
    relative = posixpath.normpath(str(origin.get("path") or "."))
    artifacts = producer.get("artifacts") or {}
    if artifacts.get("complete"):
        prefix = posixpath.join(str(artifacts["prefix"]).strip("/"), relative)
        return Source(
            source.slot,
            source.field,
            "object",
            posixpath.normpath(prefix),
            workspace=str(artifacts["workspace"]),
        )
    if producer.get("backend") != job.get("backend"):
        raise SubmitRejected(
            f"{source.field}: dataset {source.value} is in the results of job {producer['_id']} "
            f"on {producer.get('backend')}; run this job there, or give the dataset job a "
            "workspace so its results are copied where any backend can read them"
        )
    backend = ctx.backend(str(job["backend"]))
    where = backend.run_results_dir(Handle.from_doc(producer["handle"]))
    return Source(
        source.slot, source.field, "path", posixpath.normpath(posixpath.join(where, relative))
    )


def _storage(ctx: Context, job: Mapping[str, Any], source: Source) -> Storage:
    """The workspace a prefix lives in: the dataset's, or for a URI the job's own, whose
    bucket must be the one the URI names (credentials are never borrowed across buckets)."""
    workspace_id = source.workspace or job.get("workspace")
    if not workspace_id:
        raise SubmitRejected(f"{source.field}: {_shown(source)} needs the job's workspace")
    workspace = ctx.resources.workspace(str(workspace_id))
    if source.bucket:
        bucket = bucket_of(workspace.details)
        if bucket != source.bucket:
            raise SubmitRejected(
                f"{source.field}: {_shown(source)} is not in the job's workspace bucket {bucket!r}"
            )
    try:
        return ctx.resources.storage(workspace)
    except StorageError as e:
        raise SubmitRejected(f"{source.field}: {e}") from e


def _shown(source: Source) -> str:
    if source.kind == "object" and source.bucket:
        return f"{source.bucket}/{source.value}"
    return source.value


def _atomic(dest: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Written under a temporary name, then renamed: a half copy never looks staged."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    with open(part, "wb") as out:
        write(out)
    os.replace(part, dest)
