"""Backend names -> dotted paths, imported only when first used, so a missing
optional SDK is a clear message instead of an ImportError at start-up.

A job's backend is stored as a *target*: the backend kind alone (``process``,
``kubernetes``), configured by the deployment's settings, or ``kind:workspace_id``
(``slurm:…``, ``lepton:…``) when the workspace says where and how to connect. Reconcile
groups jobs by target, so each cluster is polled once per tick; the Celery queue is the
kind, so operators scale workers per kind of compute.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from jobyard.backends.base import Backend, Capability
from jobyard.backends.errors import UnknownBackend
from jobyard.schemas.settings import Settings

# kind -> ("module:factory", pip extra that provides its SDK, or "")
# A factory is called as factory(settings, config): config is the decrypted workspace
# details for targets with a workspace, else empty.
BACKENDS: dict[str, tuple[str, str]] = {
    "process": ("jobyard.backends.process.backend:ProcessBackend.from_settings", ""),
    "kubernetes": (
        "jobyard.backends.kubernetes.backend:KubernetesBackend.from_config",
        "kubernetes",
    ),
    "slurm": ("jobyard.backends.slurm.backend:SlurmBackend.from_config", "slurm"),
    "lepton": ("jobyard.backends.lepton.backend:LeptonBackend.from_config", ""),
}
# kinds whose target names a workspace holding the connection details
WORKSPACE_KINDS = frozenset({"slurm", "lepton"})

Factory = Callable[[Settings, Mapping[str, Any]], Backend]


def available() -> list[str]:
    return sorted(BACKENDS)


def target(kind: str, workspace_id: str | None = None) -> str:
    return f"{kind}:{workspace_id}" if workspace_id else kind


def split_target(name: str) -> tuple[str, str | None]:
    """``"slurm:ws1"`` -> ``("slurm", "ws1")``; ``"process"`` -> ``("process", None)``."""
    kind, _, workspace_id = name.partition(":")
    return kind, workspace_id or None


def queue_for(name: str) -> str:
    """The Celery queue that serves a target: one per kind of compute."""
    return split_target(name)[0]


def load(kind: str) -> Factory:
    try:
        path, extra = BACKENDS[kind]
    except KeyError:
        raise UnknownBackend(f"no backend {kind!r}; available: {', '.join(available())}") from None
    module_name, _, attr = path.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as e:
        hint = f"; install jobyard[{extra}]" if extra else ""
        raise UnknownBackend(f"backend {kind!r} cannot be loaded ({e}){hint}") from e
    for part in attr.split("."):
        found = getattr(found, part)
    factory: Factory = found
    return factory


def capabilities(kind: str) -> frozenset[Capability]:
    """What a backend kind can do, read from its class without building it."""
    factory: Any = load(kind)
    owner = getattr(factory, "__self__", factory)  # a classmethod factory: its class
    found: frozenset[Capability] = getattr(owner, "capabilities", frozenset())
    return found


def create(kind: str, settings: Settings, config: Mapping[str, Any] | None = None) -> Backend:
    return load(kind)(settings, config or {})
