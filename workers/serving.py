"""Model servers (inference microservices) as the engine sees them: runs of a catalog
entry's ``serve`` action, placed on an endpoint before they start, and ready once their
health check answers.

Everything else a server needs is the engine's as for any run: dispatch, quotas, a poll
per backend per pass, stop and cleanup. ``workers.decide`` restarts one that dies after it
was ready (at most ``serving.max_restarts`` times), ends one that never becomes ready, and
stops one nobody called for ``serving.idle_timeout_minutes``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import urllib3

from jobyard.backends.base import Backend, Endpoint, Handle, RunSpec
from jobyard.backends.errors import BackendError
from jobyard.schemas.job import SERVE_ACTION
from jobyard.workers.context import Context

logger = logging.getLogger(__name__)
PROBE_SECONDS = 1.0
PROBES_AT_ONCE = 16
_pool = urllib3.PoolManager(num_pools=64, maxsize=1, retries=False)


def placed(backend: Backend, spec: RunSpec) -> tuple[RunSpec, Endpoint]:
    """The run told where to listen (``JY_SERVE_HOST``/``JY_SERVE_PORT``)."""
    endpoint = backend.serving_endpoint(spec)
    env = {**spec.env, "JY_SERVE_HOST": endpoint.bind_host, "JY_SERVE_PORT": str(endpoint.port)}
    return dataclasses.replace(spec, env=env), endpoint


def recorded(endpoint: Endpoint | None, handle: Handle) -> dict[str, Any]:
    """The job fields that say where the API reaches the server: the backend's address
    once the run exists (a Kubernetes Service's), else the endpoint's; none yet where the
    server's node picks its port (SLURM: ``step`` finds it once the server runs)."""
    if endpoint is None:
        return {}
    return {"serving.url": str(handle.data.get("serving_url") or endpoint.url) or None}


def healthy(url: str, path: str) -> bool:
    try:
        response = _pool.request(
            "GET", url.rstrip("/") + path, timeout=PROBE_SECONDS, preload_content=True
        )
    except urllib3.exceptions.HTTPError:
        return False
    return bool(response.status == 200)


def step(ctx: Context, backend_name: str) -> int:
    """Probe each running server of the backend that is not ready yet; mark the ones that
    answer. Servers placed where they run are looked up first, all in one backend call.
    The probes run side by side: one slow server does not hold up the others."""
    starting = ctx.store.jobs.starting_servers(backend_name, SERVE_ACTION)
    if not starting:
        return 0
    backend = ctx.backend(backend_name)
    _find_places(ctx, backend, [j for j in starting if not _url(j)])
    probing = [j for j in starting if _url(j)]
    if not probing:
        return len(starting)
    with ThreadPoolExecutor(min(PROBES_AT_ONCE, len(probing))) as probes:
        answers = list(probes.map(lambda job: _probe(backend, job), probing))
    for job, ready in zip(probing, answers, strict=True):
        if ready:
            serving = job["serving"]
            message = f"ready: serving {serving.get('model')} at {serving['url']}"
            if ctx.store.jobs.mark_ready(job["_id"], int(job["run"]), message):
                logger.info("service %s: ready at %s", job["_id"], serving["url"])
    return len(starting)


def _find_places(ctx: Context, backend: Backend, unplaced: list[dict[str, Any]]) -> None:
    """Record the address of each server that has reported one (in ``job`` too, so this
    pass probes it)."""
    handles = {str(j["handle"]["name"]): j for j in unplaced if j.get("handle")}
    if not handles:
        return
    try:
        found = backend.serving_addresses([Handle.from_doc(j["handle"]) for j in handles.values()])
    except BackendError as e:
        logger.warning("%s: cannot find model servers: %s", backend.name, e)
        return
    for name, url in found.items():
        job = handles[name]
        if ctx.store.jobs.place_server(job["_id"], int(job["run"]), url, backend.tunnels):
            job["serving"] = {**job["serving"], "url": url}


def _url(job: Mapping[str, Any]) -> str | None:
    url = (job.get("serving") or {}).get("url")
    return str(url) if url else None


def _probe(backend: Backend, job: Mapping[str, Any]) -> bool:
    serving = job.get("serving") or {}
    try:
        url = backend.reach(str(serving["url"]))
    except BackendError as e:
        logger.info("service %s: cannot reach %s: %s", job["_id"], serving["url"], e)
        return False
    return healthy(url, str(serving.get("health_path") or "/health"))
