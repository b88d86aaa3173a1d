"""The check a workspace passes before it is stored: its bucket (or directory)
exists and accepts a write. Failing fast here beats a job failing an hour
later at its first checkpoint upload."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobyard.backends.storage.errors import StorageNotSupported
from jobyard.backends.storage.factory import storage_for, storage_kind

# quick answers: the caller is an HTTP request
PROBE_CLIENT: dict[str, Any] = {"connect_timeout": 3, "attempts": 1}


def checked_kind(cloud_type: str, details: Mapping[str, Any]) -> str | None:
    """The adapter kind to check, or None when the workspace stores nothing we can
    probe (SLURM, Hugging Face, a not-yet-supported cloud, a local one without path)."""
    try:
        kind, config = storage_kind(cloud_type, details)
    except StorageNotSupported:
        return None
    if kind == "file" and not config.get("path"):
        return None
    return kind


def check_workspace(cloud_type: str, details: Mapping[str, Any]) -> None:
    """Raise the precise StorageError if the workspace's storage is unusable."""
    if checked_kind(cloud_type, details) is None:
        return
    storage_for(cloud_type, details, **PROBE_CLIENT).check()
