"""Which adapter serves a workspace, decided by its cloud type, as data.

``STORAGE_KINDS`` says what each cloud type stores through; a type without an
adapter gets a clear "not supported yet" instead of a guess. Lepton
workspaces keep their data in a nested ``storage_backend`` of another type.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jobyard.backends.storage.base import Storage
from jobyard.backends.storage.errors import StorageNotSupported
from jobyard.backends.storage.file import FileStorage

STORAGE_KINDS: dict[str, str] = {"aws": "s3", "seaweedfs": "s3", "local": "file"}
NOT_YET = {
    "azure": "Azure Blob storage is not supported yet; use an aws or seaweedfs workspace",
    "huggingface": "huggingface workspaces hold public datasets only; they cannot store data",
    "slurm": "slurm workspaces keep results on the cluster; give datasets by URI instead",
}


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


def storage_for(
    cloud_type: str,
    details: Mapping[str, Any],
    default_root: Path | None = None,
    **client_options: Any,
) -> Storage:
    """The adapter for a workspace's decrypted details.

    ``default_root`` is where a ``local`` workspace without a ``path`` keeps
    its files (the deployment's data directory decides it).
    """
    kind, config = storage_kind(cloud_type, details)
    if kind == "file":
        path = config.get("path") or default_root
        if not path:
            raise StorageNotSupported("this local workspace has no path to store files in")
        return FileStorage(Path(path))
    from jobyard.backends.storage.s3 import S3Storage  # boto3 is imported only when used

    return S3Storage.from_details(config, **client_options)


def workspace_root(data_dir: Path, workspace_id: str) -> Path:
    """Where a ``local`` workspace without a ``path`` keeps its files."""
    return data_dir / "workspaces" / workspace_id


def for_workspace(
    cloud_type: str, details: Mapping[str, Any], workspace_id: str, data_dir: Path
) -> Storage:
    """The adapter for a stored workspace (its decrypted details)."""
    return storage_for(cloud_type, details, workspace_root(data_dir, workspace_id))
