"""``GET /jobs:gpu_types``: what accelerators an org's jobs can ask for, from its backends.

An org's backends are the deployment's local backend and the org's ``slurm`` and ``lepton``
workspaces, each a cluster with its own address and credentials (``backends.registry``).
Each backend is asked at most once a minute in this process, however many requests and
orgs want it, and the org's list of backends is kept as long. A backend that cannot be
asked (unreachable, bad credentials) is listed with its error, never with a secret, and the
others still answer.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from jobyard.api.cache import TtlCache
from jobyard.backends import registry
from jobyard.backends.errors import BackendError
from jobyard.schemas.cloud import split_details

if TYPE_CHECKING:
    from jobyard.api.services import Services

logger = logging.getLogger(__name__)

CACHE_SECONDS = 60.0
ASKED_AT_ONCE = 8  # backends asked in parallel by one request, each in its own thread
INTERNAL = "internal error while asking this backend; the server log has the details"
_MIN_SECRET = 4  # shorter values are too common to be told apart from ordinary words


def new_cache(clock: Callable[[], float] = time.monotonic) -> TtlCache:
    return TtlCache(CACHE_SECONDS, clock)


def gpu_types(svc: Services, org: str) -> dict[str, Any]:
    """``{"gpu_types": [names], "backends": [{"backend", "accelerators", "error"?}]}``."""
    cache = svc.accelerator_cache
    targets = cache.get(("targets", org), lambda: backend_targets(svc, org))

    def answer(target: str) -> dict[str, Any]:
        return cache.get(("backend", target), lambda: ask(svc, target))

    if len(targets) == 1:
        answers = [answer(targets[0])]
    else:
        with ThreadPoolExecutor(min(ASKED_AT_ONCE, len(targets))) as pool:
            answers = list(pool.map(answer, targets))
    names = {a["name"] for found in answers for a in found["accelerators"]}
    return {"gpu_types": sorted(names), "backends": answers}


def backend_targets(svc: Services, org: str) -> list[str]:
    """The local backend, then the org's workspaces that are clusters, oldest first."""
    workspaces = svc.store.workspaces.of_types(org, registry.WORKSPACE_KINDS)
    return [svc.settings.local_backend, *(registry.target(k, i) for k, i in workspaces)]


def ask(svc: Services, target: str) -> dict[str, Any]:
    """One backend's accelerators, or why it could not tell. Store errors are not the
    backend's: they propagate (503), and nothing is kept."""
    try:
        with svc.resources.open_backend(target) as backend:
            found = backend.accelerators()
    except BackendError as e:
        message = _without_secrets(str(e), _secrets(svc, target))
        logger.warning("backend %s: cannot list accelerators: %s", target, message)
        return {"backend": target, "accelerators": [], "error": message}
    except Exception:  # one backend's bug must not take the others' answers down
        logger.exception("backend %s: cannot list accelerators", target)
        return {"backend": target, "accelerators": [], "error": INTERNAL}
    return {"backend": target, "accelerators": [dataclasses.asdict(a) for a in found]}


def _secrets(svc: Services, target: str) -> list[str]:
    """The credentials of the target's workspace (its token, key, passwords)."""
    _, workspace_id = registry.split_target(target)
    if workspace_id is None:
        return []
    try:
        workspace = svc.resources.workspace(workspace_id)
        _, secret = split_details(workspace.cloud_type, workspace.details)
    except (BackendError, KeyError):  # gone, or of a cloud type no longer known
        return []
    return sorted(_strings(secret), key=len, reverse=True)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _without_secrets(message: str, secrets: list[str]) -> str:
    """Backends word their errors without credentials; this also catches a server that
    echoed one back."""
    for secret in secrets:
        if len(secret) >= _MIN_SECRET:
            message = message.replace(secret, "***")
    return message
