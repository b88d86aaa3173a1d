"""Which adapter serves a workspace, decided by its cloud type, as data.

``STORAGE_KINDS`` says what each cloud type stores through; a type without an
adapter gets a clear "not supported yet" instead of a guess. Lepton
workspaces keep their data in a nested ``storage_backend`` of another type;
``local`` ones in a directory under the deployment's allowed root (``local``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jobyard.backends.storage.base import Storage
from jobyard.backends.storage.errors import StorageNotSupported, StorageRefused
from jobyard.backends.storage.file import FileStorage
from jobyard.backends.storage.local import local_directory
from jobyard.schemas.workspace import WorkspaceConfig

STORAGE_KINDS: dict[str, str] = {"aws": "s3", "seaweedfs": "s3", "local": "file"}
NOT_YET = {
    "azure": "Azure Blob storage is not supported yet; use an aws or seaweedfs workspace",
    "huggingface": "huggingface workspaces hold public datasets only; they cannot store data",
    "slurm": "slurm workspaces keep results on the cluster; give datasets by URI instead",
}
# quick answers when a request waits for the check
PROBE_CLIENT: dict[str, Any] = {"connect_timeout": 3, "attempts": 1}


def storage_kind(cloud_type: str, details: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """(adapter kind, details it needs) for a workspace; StorageNotSupported if none."""
    if cloud_type == "lepton":
        inner = dict(details.get("storage_backend") or {})
        inner_type = str(inner.pop("storage_type", inner.pop("cloud_type", "")))
        return storage_kind(inner_type, inner)
    if cloud_type in STORAGE_KINDS:
        return STORAGE_KINDS[cloud_type], details
    reason = NOT_YET.get(cloud_type, f"cloud_type {cloud_type!r} has no storage adapter")
    raise StorageNotSupported(reason)


def storage_for(workspace: WorkspaceConfig, local_root: Path, **client_options: Any) -> Storage:
    """The adapter for a workspace. A ``local`` one without a ``path`` keeps its files in
    a directory named after it, in its org's directory under ``local_root``."""
    kind, config = storage_kind(workspace.cloud_type, workspace.details)
    if kind == "file":
        path = config.get("path")
        return FileStorage(local_directory(local_root, workspace.org, path, workspace.id))
    from jobyard.backends.storage.s3 import S3Storage  # boto3 is imported only when used

    return S3Storage.from_details(config, **client_options)


def stores_results(workspace: WorkspaceConfig) -> bool:
    """Whether a job's results are copied to the workspace: not for SLURM, Hugging Face,
    clouds without an adapter, nor a local workspace without a path of its own."""
    try:
        kind, config = storage_kind(workspace.cloud_type, workspace.details)
    except StorageNotSupported:
        return False
    return kind != "file" or bool(config.get("path"))


def check_location(workspace: WorkspaceConfig, local_root: Path) -> None:
    """Refuse (PathNotAllowed) a local workspace whose path leaves its allowed directory,
    whether or not the storage itself is probed. A relative path names a folder of the
    org's own, made here if missing; an absolute one must exist already."""
    kind, config = storage_kind(workspace.cloud_type, workspace.details)
    if kind == "file":
        path = config.get("path")
        found = local_directory(local_root, workspace.org, path, workspace.id)
        if path and not str(path).startswith("/"):
            try:
                found.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StorageRefused(f"cannot make directory {found}: {e.strerror}") from e


def check_workspace(workspace: WorkspaceConfig, local_root: Path) -> None:
    """Raise the precise StorageError if the workspace's storage is unusable: its bucket
    exists and accepts a write, or its local directory is allowed, exists and is writable.
    Failing here beats a job failing an hour later at its first checkpoint upload."""
    if stores_results(workspace):
        storage_for(workspace, local_root, **PROBE_CLIENT).check()
