"""Status events ingested per second by reconcile's ingest step (parse, one
insert_many for every job, one offset compare-and-set per job), against a raw
insert_many of the very documents it stored."""

from __future__ import annotations

import json
import time
from typing import Any

from bench.plan import Plan
from bench.servers import Bench
from bench.stats import Figure
from jobyard.backends.base import Handle, Output
from jobyard.workers import ingest
from jobyard.workers.context import Context


def status_lines(events: int, start_seq: int = 1) -> bytes:
    """What the reference workload writes per epoch: status, progress, metrics."""
    lines = []
    for i in range(events):
        seq = start_seq + i
        lines.append(
            json.dumps(
                {
                    "seq": seq,
                    "type": "status",
                    "status": "RUNNING",
                    "ts": 1_700_000_000.0 + seq,
                    "message": f"epoch {seq} done",
                    "epoch": seq,
                    "max_epoch": events,
                    "time_per_epoch": 1.5,
                    "eta": 30.0,
                    "kpi": {"loss": 1.0 / seq, "accuracy": 1 - 1.0 / (seq + 1)},
                    "graphical": {"loss": 1.0 / seq, "accuracy": 1 - 1.0 / (seq + 1)},
                }
            )
        )
    return ("\n".join(lines) + "\n").encode()


def prepare(bench: Bench, jobs: int, events: int) -> tuple[list[dict[str, Any]], Any, Any]:
    """Jobs as reconcile sees them (submitted, Running) and one tick's output each."""
    from bench import experiments

    docs, handles, outputs = [], [], {}
    data = status_lines(events)
    for i in range(jobs):
        fields = {
            **experiments.job_body(experiments.TRUE, f"ingest-{time.time()}-{i}"),
            "specs": {},
            "timeout_minutes": 60,
        }
        doc = bench.store.jobs.create("ingest", "bench", fields, "process", f"fp-{time.time()}-{i}")
        handle = Handle("process", f"jy-{doc['_id']}-r1", {})
        docs.append(doc)
        handles.append(handle)
        outputs[handle.name] = Output(status=data, log=b"")
    return docs, handles, outputs


def ingest_rate(bench: Bench, plan: Plan, profiler: Any = None) -> Figure:
    ctx = Context(bench.settings, bench.store, bench.redis, None)
    raw = bench.store.db["bench_raw_events"]
    ours, theirs = [], []
    total = plan.ingest_jobs * plan.ingest_events
    for _ in range(max(plan.rounds, 2) if plan.profile else plan.rounds):
        jobs, handles, outputs = prepare(bench, plan.ingest_jobs, plan.ingest_events)
        start = time.perf_counter()
        ingest.ingest(ctx, jobs, handles, outputs)
        ours.append(total / (time.perf_counter() - start))
        ids = [j["_id"] for j in jobs]
        stored = list(bench.store.db.job_events.find({"job_id": {"$in": ids}}))
        if len(stored) != total:
            raise RuntimeError(f"ingest stored {len(stored)} events, expected {total}")
        start = time.perf_counter()
        raw.insert_many(stored, ordered=False)
        theirs.append(total / (time.perf_counter() - start))
    if profiler is not None:
        jobs, handles, outputs = prepare(bench, plan.ingest_jobs, plan.ingest_events)
        with profiler("ingest"):
            ingest.ingest(ctx, jobs, handles, outputs)
    best, base = max(ours), max(theirs)
    return Figure(
        "events ingested by reconcile",
        "events/s",
        best,
        base,
        "raw insert_many of the same docs",
        "≥ 0.5× baseline",
        best >= 0.5 * base,
        {
            "jobs": plan.ingest_jobs,
            "events_per_job": plan.ingest_events,
            "jobyard_rounds": ours,
            "baseline_rounds": theirs,
        },
    )
