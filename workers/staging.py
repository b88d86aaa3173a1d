"""A job's datasets copied to where its run can read them, before the run is submitted.

Paths the run's machines see are passed through untouched; object prefixes (from a
dataset in a workspace, or an ``aws://`` / ``seaweedfs://`` URI in the job's own
workspace bucket) and public URLs are copied into the backend's staging directory, with
the same progress fields as result uploads (``job_details.transfer``). A re-dispatch
skips files already there with the right size, so staging is idempotent.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import IO, Any

from jobyard.backends.base import Backend, RunSpec
from jobyard.backends.errors import BackendUnavailable, SubmitRejected
from jobyard.backends.storage import Storage, StorageError
from jobyard.backends.storage.base import ObjectInfo
from jobyard.backends.storage.errors import StorageUnreachable
from jobyard.backends.storage.factory import for_workspace
from jobyard.backends.storage.progress import Progress
from jobyard.schemas.staging import Source, environment, sources
from jobyard.store.errors import NotFound
from jobyard.workers.context import Context
from jobyard.workers.transfers import ProgressPublisher

URL_TIMEOUT_SECONDS = 60.0
Plan = tuple[Path, Storage, str, list[ObjectInfo]]  # target dir, storage, prefix, objects


def stage(ctx: Context, job: Mapping[str, Any], backend: Backend, spec: RunSpec) -> dict[str, str]:
    """Copy what needs copying; the ``JY_*_DATASET_DIR(S)`` variables for the run."""
    slots = sources(job)
    if not slots:
        return {}
    root = backend.staging_dir(spec)
    dirs: dict[str, str] = {}
    plans: list[Plan] = []
    urls: list[tuple[Path, str]] = []
    try:
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
            if resolved.kind == "url":
                urls.append((target, resolved.value))
            else:
                storage = _storage(ctx, job, resolved)
                prefix = resolved.value.strip("/")
                listed = list(storage.list(prefix))
                if not listed:
                    raise SubmitRejected(f"{source.field}: nothing under {_shown(resolved)}")
                plans.append((target, storage, prefix, listed))
        _copy(ctx, str(job["_id"]), plans, urls)
    except StorageUnreachable as e:
        raise BackendUnavailable(f"datasets: {e}") from e
    except StorageError as e:
        raise SubmitRejected(f"datasets: {e}") from e
    except OSError as e:
        raise BackendUnavailable(f"datasets: cannot write the staging directory: {e}") from e
    return environment(dirs, slots)


def _resolve(ctx: Context, job: Mapping[str, Any], source: Source) -> Source:
    """A dataset id becomes the workspace prefix or URL it names."""
    if source.kind != "dataset":
        return source
    try:
        dataset = ctx.store.datasets.get(job["org"], source.value)
    except NotFound as e:
        raise SubmitRejected(f"{source.field}: {e}") from e
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


def _storage(ctx: Context, job: Mapping[str, Any], source: Source) -> Storage:
    """The workspace a prefix lives in: the dataset's, or for a URI the job's own, whose
    bucket must be the one the URI names (credentials are never borrowed across buckets)."""
    workspace_id = source.workspace or job.get("workspace")
    if not workspace_id:
        raise SubmitRejected(f"{source.field}: {_shown(source)} needs the job's workspace")
    _, config = ctx.store.workspaces.for_backend(str(workspace_id))
    cloud_type = str(config.pop("cloud_type"))
    if source.bucket:
        bucket = config.get("bucket_name") or config.get("cloud_bucket_name")
        if bucket != source.bucket:
            raise SubmitRejected(
                f"{source.field}: {_shown(source)} is not in the job's workspace bucket {bucket!r}"
            )
    return for_workspace(cloud_type, config, str(workspace_id), ctx.settings.data_dir)


def _shown(source: Source) -> str:
    if source.kind == "object" and source.bucket:
        return f"{source.bucket}/{source.value}"
    return source.value


def _copy(ctx: Context, job_id: str, plans: list[Plan], urls: list[tuple[Path, str]]) -> None:
    files = sum(len(objects) for *_, objects in plans) + len(urls)
    size = sum(o.size for *_, objects in plans for o in objects)
    publisher = ProgressPublisher(ctx, job_id, Progress("download", files, size, time.monotonic()))
    for target, storage, prefix, objects in plans:
        for item in objects:
            relative = posixpath.relpath(item.key, prefix) if prefix else item.key
            dest = target / relative
            publisher.progress.begin_file(relative, item.size)
            if not (dest.is_file() and dest.stat().st_size == item.size):
                _atomic(dest, partial(storage.download, item.key, progress=publisher.moved))
            publisher.progress.end_file()
            publisher.publish()
    for target, url in urls:
        dest = target / (posixpath.basename(url.split("?")[0]) or "data")
        publisher.progress.begin_file(dest.name, 0)
        if not dest.is_file():
            _atomic(dest, partial(_fetch, url))
        publisher.progress.end_file()
    publisher.publish(force=True)


def _atomic(dest: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Written under a temporary name, then renamed: a half copy never looks staged."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    with open(part, "wb") as out:
        write(out)
    os.replace(part, dest)


def _fetch(url: str, out: IO[bytes]) -> None:
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_SECONDS) as response:  # noqa: S310
            shutil.copyfileobj(response, out, 1024 * 1024)
    except urllib.error.HTTPError as e:
        raise SubmitRejected(f"{url}: HTTP {e.code}") from e
    except (urllib.error.URLError, TimeoutError) as e:
        raise BackendUnavailable(f"{url}: {e}") from e
