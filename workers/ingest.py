"""What runs wrote since the last tick, stored exactly once, in a few round trips for all
of a backend's jobs whatever their number: one ``insert_many`` of events and one of log
chunks; the update that moves each job's offsets and ``job_details`` forward is handed
back, so reconcile writes it together with the job's state change in one bulk write.

Events are keyed by (job, run, seq) and log chunks by (job, position), so bytes read twice
(a reconcile that died after storing them) are stored once; the offsets move only from
the values this tick read (a conditional update), so nothing is applied twice either.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobyard.backends.base import Handle, Output
from jobyard.schemas.events import Parsed, Summary, summarize
from jobyard.schemas.protocols import parse_lines
from jobyard.store.jobs import advance_update
from jobyard.workers import telemetry
from jobyard.workers.context import Context


@dataclass(frozen=True)
class _Advance:
    job: Mapping[str, Any]
    read: Parsed
    log: bytes


@dataclass
class Ingested:
    jobs: list[Mapping[str, Any]]  # as they will be once ``advances`` are written
    advances: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    grown: list[tuple[Mapping[str, Any], int, int]] = field(default_factory=list)

    def retain(self, ctx: Context) -> None:
        """Drop the oldest log bytes and events beyond the retention settings (after the
        advances are written: they count the events stored)."""
        for job, log_bytes, new_events in self.grown:
            _retain(ctx, job, log_bytes, new_events)


def ingest(
    ctx: Context,
    jobs: Sequence[Mapping[str, Any]],
    handles: Sequence[Handle],
    outputs: Mapping[str, Output],
) -> Ingested:
    """Store the new events and log bytes of every job; the jobs as they will be (offsets,
    ``job_details`` and log size with this tick's output folded in, in the same order) and
    the conditional updates that make them so."""
    pending: list[_Advance] = []
    events: list[tuple[str, str, int, list[dict[str, Any]]]] = []
    for job, handle in zip(jobs, handles, strict=True):
        output = outputs.get(handle.name)
        if output is None:
            continue
        protocol = str(job.get("status_protocol") or "jobyard")
        read = parse_lines(protocol, output.status, job["offsets"].get("status_lines", 0))
        if read.events:
            events.append((job["_id"], job["org"], job["run"], read.events))
        if read.consumed or output.log:
            pending.append(_Advance(job, read, output.log))
    telemetry.EVENTS_INGESTED.inc(ctx.store.events.ingest_many(events))
    ctx.store.curves.append_many(events)
    chunks = [
        (a.job["_id"], a.job["org"], a.job["run"], a.job["log_bytes"], a.log)
        for a in pending
        if a.log
    ]
    stored = ctx.store.logs.append_many(chunks)
    telemetry.LOG_BYTES_INGESTED.inc(sum(stored.values()))
    result = Ingested(list(jobs))
    folded = {}
    for item in pending:
        job = item.job
        size = stored.get((job["_id"], job["log_bytes"]), 0)
        offsets = {
            "status": job["offsets"]["status"] + item.read.consumed,
            "status_lines": job["offsets"].get("status_lines", 0) + item.read.lines,
            "log": job["offsets"]["log"] + size,
        }
        summary = summarize(
            item.read.events,
            (job.get("job_details") or {}).get("kpi"),
            job.get("last_metrics") or {},
        )
        log_bytes, new_events = job["log_bytes"] + size, len(item.read.events)
        result.advances[job["_id"]] = advance_update(job, offsets, log_bytes, summary, new_events)
        folded[job["_id"]] = _fold(job, offsets, log_bytes, summary)
        result.grown.append((job, log_bytes, new_events))
    result.jobs = [folded.get(job["_id"], job) for job in jobs]
    return result


def _fold(
    job: Mapping[str, Any], offsets: Mapping[str, int], log_bytes: int, summary: Summary
) -> dict[str, Any]:
    """The job document as the update just written leaves it (what decisions read)."""
    after = dict(job)
    after["offsets"] = dict(offsets)
    after["log_bytes"] = log_bytes
    details = copy.deepcopy(dict(job.get("job_details") or {}))
    details.update(summary.details)
    after["job_details"] = details
    if summary.last_metrics:
        metrics = copy.deepcopy(dict(job.get("last_metrics") or {}))
        for metric, variants in summary.last_metrics.items():
            metrics.setdefault(metric, {}).update(variants)
        after["last_metrics"] = metrics
    return after


def _retain(ctx: Context, job: Mapping[str, Any], log_bytes: int, new_events: int) -> None:
    """Drop the oldest log bytes and events beyond the retention settings."""
    settings = ctx.settings
    if log_bytes > settings.log_retention_bytes:
        ctx.store.logs.trim(job["_id"], log_bytes, settings.log_retention_bytes)
    if job.get("events_stored", 0) + new_events > settings.event_retention:
        ctx.store.events.trim(job["_id"], settings.event_retention)
        ctx.store.jobs.reset_event_count(job["_id"], settings.event_retention)
