"""The one place a job's compute backend and a workspace's storage are built.

The API, the workers and maintenance all ask here. A backend *target* is a kind alone
(``process``, ``kubernetes``: configured by the deployment's settings) or
``kind:workspace_id`` (``slurm:…``, ``lepton:…``: the workspace holds the address and
credentials), see ``registry``. Workspaces come from a lookup the store provides, so this
layer never touches MongoDB.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

from jobyard.backends import registry
from jobyard.backends.base import Backend
from jobyard.backends.errors import WorkspaceMissing
from jobyard.backends.storage.base import Storage
from jobyard.backends.storage.factory import (
    check_location,
    check_workspace,
    storage_for,
    stores_results,
)
from jobyard.schemas.settings import Settings
from jobyard.schemas.workspace import WorkspaceConfig


class WorkspaceLookup(Protocol):
    def for_backend(self, workspace_id: str) -> WorkspaceConfig:
        """The workspace; a LookupError when there is none."""
        ...


class Resources:
    """Backends and storage for one process. ``backend()`` keeps each target's backend for
    reuse (its connections) until the workspace it was built from changes; use it from one
    thread (a Celery pool process). ``open_backend()`` builds a fresh one per use, for
    threaded callers such as the API."""

    def __init__(self, settings: Settings, workspaces: WorkspaceLookup) -> None:
        self.settings = settings
        self._workspaces = workspaces
        self._backends: dict[str, tuple[float, Backend]] = {}

    def workspace(self, workspace_id: str) -> WorkspaceConfig:
        try:
            return self._workspaces.for_backend(workspace_id)
        except LookupError as e:
            raise WorkspaceMissing(f"workspace {workspace_id} not found") from e

    def _build(self, target: str) -> tuple[float, Backend]:
        kind, workspace_id = registry.split_target(target)
        if workspace_id is None:
            return 0.0, registry.create(kind, self.settings, {})
        workspace = self.workspace(workspace_id)
        config = {"cloud_type": workspace.cloud_type, **workspace.details}
        return workspace.version, registry.create(kind, self.settings, config)

    def backend(self, target: str) -> Backend:
        _, workspace_id = registry.split_target(target)
        cached = self._backends.get(target)
        if cached is not None:
            version = self.workspace(workspace_id).version if workspace_id else 0.0
            if cached[0] == version:
                return cached[1]
            cached[1].close()
        built = self._build(target)
        self._backends[target] = built
        return built[1]

    def install(self, target: str, backend: Backend) -> None:
        """Serve ``target`` with ``backend`` from now on (tests and benchmarks inject one)."""
        self._backends[target] = (0.0, backend)

    @contextlib.contextmanager
    def open_backend(self, target: str) -> Iterator[Backend]:
        backend = self._build(target)[1]
        try:
            yield backend
        finally:
            backend.close()

    def storage(self, workspace: WorkspaceConfig) -> Storage:
        return storage_for(workspace, self.settings.workspace_root)

    def check_storage(self, workspace: WorkspaceConfig, probe: bool = True) -> None:
        """A local path must stay in its allowed directory; with ``probe``, the bucket or
        directory must also exist and accept a write."""
        if stores_results(workspace):
            check_location(workspace, self.settings.workspace_root)
        if probe:
            check_workspace(workspace, self.settings.workspace_root)

    def close(self) -> None:
        for _, backend in self._backends.values():
            backend.close()
        self._backends.clear()
