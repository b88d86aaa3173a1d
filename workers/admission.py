"""Quota admission, at dispatch: a job of an org with a quota starts only if a slot is
free for it and no job of that org that should start before it (higher priority, or as
high and older) is still waiting; the same again on the job's backend target when the
org has limits there. Jobs left waiting show why and are dispatched again
when a slot frees (``admit_next``) or by the tick."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from jobyard.store.quotas import gpus_of, limits_for
from jobyard.workers import enqueue
from jobyard.workers.context import Context

logger = logging.getLogger(__name__)
LEASE_SECONDS = 10.0
WAIT_SECONDS = 3.0


def blocked(ctx: Context, job: Mapping[str, Any]) -> str | None:
    """Why the job may not start now (the message it shows), or None to go ahead. The
    caller holds the job's dispatch claim. The job must fit the org's limits and those
    of its backend target, if the org has any."""
    org, backend = str(job["org"]), str(job["backend"])
    quota = ctx.store.quotas.get(org)
    scopes = [
        (label, limits, only)
        for label, limits, only in (
            ("org quota", quota, None),
            (f"org quota on {backend}", limits_for(quota, backend), backend),
        )
        if limits["max_running_jobs"] is not None or limits["max_gpus"] is not None
    ]
    if not scopes:
        return None
    lease = None
    deadline = time.monotonic() + WAIT_SECONDS  # admissions take milliseconds: queue up
    while lease is None and time.monotonic() < deadline:
        lease = ctx.lease(f"admit:{org}", LEASE_SECONDS)
        if lease is None:
            time.sleep(0.02)
    if lease is None:
        return "waiting for org quota (other jobs of the org are being admitted)"
    try:
        window = ctx.settings.dispatch_lease_seconds
        occupying = ctx.store.quotas.occupying(org, str(job["_id"]), window)
        for label, limits, only in scopes:
            reason = _over(ctx, job, label, limits, _inside(occupying, only), only)
            if reason is not None:
                return reason
        ctx.store.quotas.admit(str(job["_id"]))
        return None
    finally:
        lease.release()


def _inside(held: Sequence[Mapping[str, Any]], backend: str | None) -> list[Mapping[str, Any]]:
    """The jobs holding a slot of one scope: the org's (``None``) or a backend target's."""
    return [j for j in held if backend is None or j.get("backend") == backend]


def _over(
    ctx: Context,
    job: Mapping[str, Any],
    label: str,
    limits: Mapping[str, Any],
    held: Sequence[Mapping[str, Any]],
    backend: str | None,
) -> str | None:
    """Why ``job`` does not fit these limits, given the jobs holding a slot of them."""
    jobs_limit, gpus_limit = limits["max_running_jobs"], limits["max_gpus"]
    if jobs_limit is not None:
        free = jobs_limit - len(held)
        window = ctx.settings.dispatch_lease_seconds
        waiting = ctx.store.quotas.waiting(str(job["org"]), max(free, 0), window, backend)
        if free <= 0 or job["_id"] not in [w["_id"] for w in waiting]:
            return f"waiting for {label}: {len(held)} of {jobs_limit} jobs running"
    if gpus_limit is not None:
        used = sum(gpus_of(j) for j in held)
        if used + gpus_of(job) > gpus_limit:
            return f"waiting for {label}: {used} of {gpus_limit} GPUs in use"
    return None


MAX_SENT = 100  # without a job limit, a freed slot sends at most this many to be checked


def fitting(
    quota: Mapping[str, Any],
    held: Sequence[Mapping[str, Any]],
    waiting: Sequence[Mapping[str, Any]],
) -> list[Mapping[str, Any]]:
    """The waiting jobs, in order, that fit the free room of every scope they fall
    under (the org's, their backend target's), each taking its room before the next is
    considered. Admission checks each again; this only keeps a freed slot from sending
    every waiting job (with a GPU or target limit alone, that was all of them)."""
    room: dict[str | None, list[float]] = {}  # scope (None: the org) -> [jobs, GPUs] free
    for limits, backend in [(quota, None)] + [(t, t["backend"]) for t in quota["backends"]]:
        inside = _inside(held, backend)
        jobs_limit, gpus_limit = limits["max_running_jobs"], limits["max_gpus"]
        room[backend] = [
            float("inf") if jobs_limit is None else jobs_limit - len(inside),
            float("inf") if gpus_limit is None else gpus_limit - sum(map(gpus_of, inside)),
        ]
    chosen = []
    for job in waiting:
        scopes = [room[b] for b in (None, job.get("backend")) if b in room]
        need = gpus_of(job)
        if all(jobs >= 1 and gpus >= need for jobs, gpus in scopes):
            for free in scopes:
                free[0], free[1] = free[0] - 1, free[1] - need
            chosen.append(job)
    return chosen


def admit_next(ctx: Context, org: str) -> int:
    """A slot of ``org`` freed: dispatch its next waiting jobs (as many as may fit)."""
    quota = ctx.store.quotas.get(org)
    if quota["max_running_jobs"] is None and quota["max_gpus"] is None and not quota["backends"]:
        return 0
    window = ctx.settings.dispatch_lease_seconds
    held = ctx.store.quotas.occupying(org, "", window)
    limit = MAX_SENT
    if quota["max_running_jobs"] is not None:
        limit = max(quota["max_running_jobs"] - len(held), 0)
    sent = 0
    for job in fitting(quota, held, ctx.store.quotas.waiting(org, limit, window)):
        sent += enqueue.dispatch(ctx.celery, ctx.redis, job)
    return sent
