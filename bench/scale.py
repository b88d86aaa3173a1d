"""Cost as running jobs grow (10, 100, 1,000 `sleep 600` jobs on the process
backend): reconcile pass time and backend calls per pass, the beat tick, and
the memory of the API and worker process groups. The process backend's own
per-run launcher is measured too: it is per job by design, outside the worker.

Up to ``plan.real_jobs`` jobs go the whole way (POST, dispatch, a launcher and
its `sleep`). Starting a launcher costs ~0.1 s of CPU here, so beyond that the
jobs are *clones*: job documents and run directories copied from the real
running ones (same files, same syscalls per job for reconcile), sharing their
launchers. ``python -m bench --real-scale`` makes every job real.

The worker runs without beat here, so the passes timed in this process are
the only reconciles; one pass is also sent to the worker and timed from its log.
"""

from __future__ import annotations

import collections
import contextlib
import re
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import bson

from bench import experiments, spy
from bench.client import Api
from bench.plan import Plan
from bench.servers import Bench, group_pids, kill_runs, memory, pids_under, process_groups
from bench.stats import Figure, median, wait_until
from bench.submit import post_jobs, reached
from jobyard.backends.base import Handle, Offsets, Output, RunSpec, RunStatus, run_name
from jobyard.backends.process import layout
from jobyard.backends.process.backend import ProcessBackend
from jobyard.schemas.job import JobState
from jobyard.store.jobs import ACTIVE
from jobyard.workers import engine, enqueue, locks
from jobyard.workers.celery_app import create_celery
from jobyard.workers.context import Context

PROJECTION = {"specs": 0, "series": 0}
LAUNCHER_BUDGET_MB = 12  # PSS of one launcher + its `sleep`, measured here
SUCCEEDED = re.compile(rb"jobyard\.reconcile\[[^\]]+\] succeeded in ([0-9.e-]+)s: (\d+)")


class CountingBackend(ProcessBackend):
    """The real process backend, counting the calls one reconcile makes."""

    calls: collections.Counter[str]

    def count(self, name: str) -> None:
        self.calls[name] += 1

    def poll(self, handles: Sequence[Handle]) -> dict[str, RunStatus]:
        self.count("poll")
        return super().poll(handles)

    def read_output(
        self, requests: Sequence[tuple[Handle, Offsets]], max_bytes: int
    ) -> dict[str, Output]:
        self.count("read_output")
        return super().read_output(requests, max_bytes)

    def submit(self, spec: RunSpec) -> Handle:
        self.count("submit")
        return super().submit(spec)

    def stop(self, handle: Handle, graceful: bool) -> None:
        self.count("stop")
        super().stop(handle, graceful)

    def cleanup(self, handle: Handle) -> None:
        self.count("cleanup")
        super().cleanup(handle)


class StubCelery:
    """Records what tick would send instead of sending it."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def send_task(self, name: str, args: Any = None, **_: Any) -> None:
        self.sent.append((name, args))


def _context(bench: Bench) -> tuple[Context, CountingBackend]:
    ctx = Context(bench.settings, bench.store, bench.redis, StubCelery())
    backend = CountingBackend.from_settings(bench.settings)
    assert isinstance(backend, CountingBackend)
    backend.calls = collections.Counter()
    ctx.resources.install("process", backend)  # what ctx.backend("process") returns
    return ctx, backend


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


def affordable(levels: Sequence[int], real_jobs: int) -> tuple[int, ...]:
    """Levels whose real launchers fit this machine's free memory (~10 MB each)."""
    room = (mem_available_mb() - 3000) / LAUNCHER_BUDGET_MB
    kept = tuple(n for n in levels if min(n, real_jobs) <= room)
    return kept or (max(1, int(room)),)


def reconcile_passes(ctx: Context, backend: CountingBackend, ticks: int) -> dict[str, Any]:
    times, cpu, calls, seen = [], [], collections.Counter[str](), 0
    for _ in range(ticks):
        backend.calls.clear()
        start, start_cpu = time.perf_counter(), time.process_time()
        seen = engine.reconcile(ctx, "process")
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        calls = backend.calls.copy()
    watched = _watched_query_ms(ctx)
    tick_times = []
    for _ in range(ticks):
        locks.force_release(ctx.redis, "tick")
        start = time.perf_counter()
        engine.tick(ctx)
        tick_times.append(time.perf_counter() - start)
    return {
        "reconcile_ms": median(times) * 1000,
        "reconcile_ms_all": [t * 1000 for t in times],
        "reconcile_cpu_ms": median(cpu) * 1000,
        "jobs_seen": seen,
        "backend_calls": dict(calls),
        "beat_tick_ms": median(tick_times) * 1000,
        **watched,
    }


def _watched_query_ms(ctx: Context) -> dict[str, float]:
    """Jobs.watched's query as it is (whole documents) and without the fields
    reconcile never reads (specs, series): evidence for a projection."""
    query = {"backend": "process", "status": {"$in": ACTIVE}, "submitted": True}
    coll = ctx.store.db.jobs
    out = {}
    for name, projection in (("watched_full_ms", None), ("watched_projected_ms", PROJECTION)):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            list(coll.find(query, projection))
            times.append(time.perf_counter() - start)
        out[name] = median(times) * 1000
    sample = coll.find_one(query)
    out["job_doc_bytes"] = len(bson.encode(sample)) if sample else 0
    return out


def worker_reconcile(bench: Bench, log: Path) -> dict[str, float]:
    """Send one reconcile to the worker and read its duration from its log."""
    before = len(SUCCEEDED.findall(log.read_bytes()))
    celery = create_celery(bench.settings)
    celery.send_task(enqueue.RECONCILE, args=["process"], queue="process")
    celery.close()

    def logged() -> bool:
        return len(SUCCEEDED.findall(log.read_bytes())) > before

    wait_until(logged, 120, "worker reconcile", 0.1)
    seconds, jobs = SUCCEEDED.findall(log.read_bytes())[-1]
    return {"worker_reconcile_ms": float(seconds) * 1000, "worker_jobs_seen": int(jobs)}


def launchers(bench: Bench) -> dict[str, Any]:
    pids = pids_under(bench.settings.runs_dir)
    groups = process_groups()
    total = {"rss_mb": 0.0, "pss_mb": 0.0}
    for pid in pids:
        m = memory(pid, groups)  # the launcher leads its group: launcher + workload
        total["rss_mb"] += m["rss_mb"]
        total["pss_mb"] += m["pss_mb"]
    return {"launchers": len(pids), **total}


@contextlib.contextmanager
def _spying(directory: Path | None, api_pgid: int, worker_pgid: int) -> Iterator[None]:
    """py-spy on the real API and worker processes during a ramp (not a timed figure)."""
    if directory is None:
        yield
        return
    with spy.recording(group_pids(api_pgid), directory / "spy_api_post.folded"):
        with spy.recording(group_pids(worker_pgid), directory / "spy_worker_dispatch.folded"):
            yield


def clone_running(bench: Bench, count: int) -> list[str]:
    """``count`` more Running jobs copied from the real ones: own job id, own run
    directory (a copy), the source's launcher pid. Returns their ids."""
    running = bench.store.db.jobs.find({"status": JobState.RUNNING.value, "submitted": True})
    sources = [d for d in running if not str(d.get("fingerprint")).startswith("clone-")]
    root = bench.settings.runs_dir
    docs = []
    for i in range(count):
        src = sources[i % len(sources)]
        job_id = str(uuid.uuid4())
        data = dict(src["handle"]["data"])
        run_dir, results = (
            layout.run_dir(root, job_id, src["run"]),
            layout.results_dir(root, job_id),
        )
        shutil.copytree(data["run_dir"], run_dir)
        results.mkdir(parents=True, exist_ok=True)
        data.update(job_id=job_id, run_dir=str(run_dir), results_dir=str(results))
        handle = {"backend": "process", "name": run_name(job_id, src["run"]), "data": data}
        docs.append({**src, "_id": job_id, "fingerprint": f"clone-{job_id}", "handle": handle})
    if docs:
        bench.store.db.jobs.insert_many(docs)
    return [d["_id"] for d in docs]


def _ramp(bench: Bench, api: Api, ids: list[str], level: int, plan: Plan) -> dict[str, Any]:
    """Bring the running jobs to ``level``: real ones first, clones past plan.real_jobs."""
    start = time.perf_counter()
    real = max(0, min(level, plan.real_jobs) - len(ids))
    ids += post_jobs(api, real, plan.clients, experiments.SLEEP)
    wait_until(reached(bench, ids, JobState.RUNNING, JobState.ERROR), 900, f"{level} jobs", 0.25)
    real_s = time.perf_counter() - start
    cloned = clone_running(bench, level - len(ids))
    ids += cloned
    return {
        "ramp_s": time.perf_counter() - start,
        "real_started": real,
        "real_jobs_per_s": real / real_s if real else None,
        "cloned": len(cloned),
    }


def scale(
    bench: Bench, api: Api, api_pgid: int, plan: Plan, profiler: Any, profiles: Path | None
) -> list[Figure]:
    worker = bench.start_worker(beat=False)
    log = bench.work / "worker.log"
    ctx, backend = _context(bench)
    levels = affordable(plan.scale_levels, plan.real_jobs)
    rows: dict[int, dict[str, Any]] = {}
    ids: list[str] = []
    try:
        rows[0] = {"api": memory(api_pgid), "worker": memory(worker.pid)}
        for index, level in enumerate(levels):
            spying = profiles if index == 1 else None  # a ramp of real jobs, not the first
            with _spying(spying, api_pgid, worker.pid):
                row = _ramp(bench, api, ids, level, plan)
            row["errors"] = bench.store.db.jobs.count_documents(
                {"_id": {"$in": ids}, "status": JobState.ERROR.value}
            )
            row.update(reconcile_passes(ctx, backend, plan.ticks))
            row.update(worker_reconcile(bench, log))
            row["api"] = memory(api_pgid)
            row["worker"] = memory(worker.pid)
            row["launcher"] = launchers(bench)
            rows[level] = row
        if profiler is not None:
            with profiler("reconcile"):
                engine.reconcile(ctx, "process")
    finally:
        kill_runs(bench.settings.runs_dir)
        bench.stop_child(worker)
    if profiler is not None:
        profile_dispatch(bench, ctx, profiler)
    return _figures(rows, plan.scale_levels)


def profile_dispatch(bench: Bench, ctx: Context, profiler: Any, count: int = 10) -> None:
    """engine.dispatch in this process for `true` jobs: claim, launch, record."""
    ids = []
    for i in range(count):
        fields = {
            **experiments.job_body(experiments.TRUE, f"dispatch-{i}"),
            "timeout_minutes": 60,
            "specs": experiments.TRUE.default_spec("train"),
        }
        ids.append(bench.store.jobs.create("prof", "bench", fields, "process", f"d{i}")["_id"])
    with profiler("dispatch"):
        for job_id in ids:
            engine.dispatch(ctx, job_id)


def _figures(rows: dict[int, dict[str, Any]], asked: Sequence[int]) -> list[Figure]:
    levels = sorted(n for n in rows if n)
    low, high = levels[0], levels[-1]
    r_low, r_high = rows[low], rows[high]
    calls = {n: rows[n]["backend_calls"] for n in levels}
    constant = len({tuple(sorted(c.items())) for c in calls.values()}) == 1
    mid = levels[-2] if len(levels) > 1 else low
    growth = r_high["reconcile_ms"] / max(rows[mid]["reconcile_ms"], 1e-9)
    sub_linear = growth < high / max(mid, 1)
    detail = {str(n): {k: v for k, v in rows[n].items()} for n in rows}
    scaled = "" if tuple(levels) == tuple(asked) else f" (scaled from {asked[-1]:,}: memory)"
    cloned = sum(rows[n]["cloned"] for n in levels)
    scaled += f" ({cloned:,} cloned)" if cloned else ""
    figures = [
        Figure(
            f"reconcile pass at {high:,} running jobs{scaled}",
            "ms",
            r_high["reconcile_ms"],
            None,
            "",
            "sub-linear growth; backend calls per tick constant",
            constant and sub_linear,
            {
                "levels": detail,
                "growth_last_step": growth,
                "jobs_ratio_last_step": high / mid,
                "calls_constant": constant,
                "per_job_ms_at_top": r_high["reconcile_ms"] / high,
            },
        )
    ]
    for who in ("api", "worker"):
        per_job_kb = (r_high[who]["rss_mb"] - r_low[who]["rss_mb"]) * 1024 / max(high - low, 1)
        same_shape = (r_high[who]["processes"], r_high[who]["threads"]) == (
            r_low[who]["processes"],
            r_low[who]["threads"],
        )
        figures.append(
            Figure(
                f"{who} RSS with {high:,} running jobs",
                "MB",
                r_high[who]["rss_mb"],
                None,
                "",
                "flat per job; no per-job threads or processes",
                same_shape and per_job_kb < 64,
                {
                    "per_job_kb": per_job_kb,
                    "idle": rows[0][who],
                    **{str(n): rows[n][who] for n in levels},
                },
            )
        )
    launch = r_high["launcher"]
    per_launcher = launch["pss_mb"] / max(launch["launchers"], 1)
    figures.append(
        Figure(
            "process-backend launcher per job (PSS)",
            "MB",
            per_launcher,
            None,
            "",
            "(info: one launcher per run is the backend's design)",
            None,
            {**launch, "ramp_s": {str(n): rows[n]["ramp_s"] for n in levels}},
        )
    )
    return figures
