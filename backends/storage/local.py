"""Where a ``local`` workspace may keep its files: only under the deployment's allowed
root, in the directory of the workspace's org, after symlinks and ``..`` are resolved.

Without this, any org user could make the server probe and write any directory it can
reach, or read another org's workspace by naming its directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from jobyard.backends.storage.errors import StorageError


class PathNotAllowed(StorageError):
    """A local workspace path outside the org's directory under the allowed root."""


def org_root(root: Path, org: str) -> Path:
    if not org or org in {".", ".."} or "/" in org or "\0" in org:
        raise PathNotAllowed(f"org {org!r} cannot name a directory")
    return root / org


def local_directory(root: Path, org: str, path: str | None, default: str) -> Path:
    """The directory a local workspace uses: ``path`` (relative to the org's directory,
    or absolute inside it) or ``default`` when no path is given."""
    base = Path(os.path.realpath(org_root(root, org)))
    wanted = (path or "").strip() or default
    if "\0" in wanted:
        raise PathNotAllowed("a local workspace path cannot contain NUL")
    resolved = Path(os.path.realpath(base / wanted))  # an absolute ``wanted`` replaces base
    if resolved != base and not resolved.is_relative_to(base):
        raise PathNotAllowed(
            f"path {wanted!r} is outside this org's local workspace directory {base}; "
            "give a path relative to it (the operator sets the root with "
            "JOBYARD_LOCAL_WORKSPACE_ROOT)"
        )
    return resolved
