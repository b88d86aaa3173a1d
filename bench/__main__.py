"""``python -m bench [--quick] [--only PHASE ...] [--out FILE]``: start Redis and
nx-27017 (or use JOBYARD_REDIS_URL / JOBYARD_MONGO_URI), the real API and
workers, measure every figure against its same-run baseline, print the table
and write JSON (default ``bench/results/latest.json``)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import automl, churn, curves, ingest, pools, reads, report, scale, serving, submit
from bench.client import login
from bench.plan import PLANS, Plan
from bench.profiles import profile_post, profiler_for
from bench.servers import Bench, bench_servers
from bench.stats import Figure

RESULTS = Path(__file__).resolve().parent / "results"
PHASES = (
    "post",
    "e2e",
    "latency",
    "ingest",
    "reads",
    "curves",
    "scale",
    "pools",
    "automl",
    "serving",
    "churn",
)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="tiny sizes: proves the suite works")
    p.add_argument("--only", nargs="+", choices=PHASES, help="run these phases only")
    p.add_argument("--out", type=Path, help="JSON file (default bench/results/latest.json)")
    p.add_argument("--no-profile", action="store_true", help="skip the profiles")
    p.add_argument(
        "--real-scale", action="store_true", help="start every scale-phase job for real (slow)"
    )
    return p.parse_args(argv)


def run(
    bench: Bench,
    phases: tuple[str, ...],
    plan: Plan,
    profile: bool,
    profiles_dir: Path,
    save: Callable[[list[Figure]], None],
) -> list[Figure]:
    profiler = profiler_for(profiles_dir) if profile and plan.profile else None
    api_proc = bench.start_api()
    api = login(bench)
    figures: list[Figure] = []

    def phase(name: str, body: Callable[[], list[Figure]]) -> None:
        if name in phases:
            start = time.perf_counter()
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            figures.extend(body())
            print(f"[bench] {name}: {time.perf_counter() - start:.1f}s", file=sys.stderr)
            save(figures)  # a run cut short still leaves what it measured

    phase(
        "post",
        lambda: [
            submit.post_throughput(bench, login(bench, "post"), plan),
            submit.round_trips(bench),
        ],
    )
    if {"e2e", "latency"} & set(phases):
        worker = bench.start_worker(beat=True)
        raw_worker = submit.start_raw_worker(bench) if "e2e" in phases else None
        phase("e2e", lambda: [submit.end_to_end(bench, api, plan)])
        phase("latency", lambda: [submit.submit_to_running(bench, api, plan)])
        for proc in (worker, raw_worker):
            if proc is not None:
                bench.stop_child(proc)
    spies = profiles_dir if profiler is not None else None
    phase("scale", lambda: scale.scale(bench, api, api_proc.pid, plan, profiler, spies))
    phase("ingest", lambda: [ingest.ingest_rate(bench, plan, profiler)])
    phase("reads", lambda: reads.read_latency(bench, plan, profiler))
    phase("curves", lambda: curves.curve_latency(bench, plan))
    phase("pools", lambda: pools.pools(bench, plan))
    if "automl" in phases:
        phase("automl", lambda: [automl.controller_tick(bench, plan)])  # no worker: alone
        worker = bench.start_worker(beat=True)
        phase("automl", lambda: [automl.search_vs_jobs(bench, api, plan)])
        bench.stop_child(worker)
    if "serving" in phases:
        worker = bench.start_worker(beat=True)
        phase("serving", lambda: serving.proxy_latency(bench, api, plan))
        bench.stop_child(worker)
    if profiler is not None:
        profile_post(bench, profiler)
    if plan.churn_jobs:  # last: it restarts Redis and the API
        phase("churn", lambda: churn.churn(bench, api_proc, plan.churn_jobs))
    return figures


def _stop_on_sigterm() -> None:
    """``timeout`` and CI send SIGTERM: unwind like Ctrl-C so every child is stopped."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING)
    _stop_on_sigterm()
    plan = PLANS["quick" if args.quick else "full"]
    if args.real_scale:
        plan = dataclasses.replace(plan, real_jobs=max(plan.scale_levels))
    phases = tuple(args.only or PHASES)
    out = args.out or RESULTS / ("latest.json" if plan.name == "full" else "quick.json")
    env = os.environ
    extra = {
        "servers": {
            "mongo": "external" if env.get("JOBYARD_MONGO_URI") else "nx-27017",
            "redis": "external" if env.get("JOBYARD_REDIS_URL") else "embedded",
        },
        "phases": list(phases),
    }
    started = time.perf_counter()

    def save(figures: list[Figure], complete: bool = False) -> None:
        elapsed = time.perf_counter() - started
        report.write(out, plan.name, figures, {**extra, "elapsed_s": elapsed, "complete": complete})

    with tempfile.TemporaryDirectory(prefix="jobyard-bench-") as tmp:
        with bench_servers(Path(tmp)) as bench:
            figures = run(bench, phases, plan, not args.no_profile, out.parent / "profiles", save)
    save(figures, complete=True)
    print(report.table(figures))
    print(f"\n{plan.name} run, {time.perf_counter() - started:.0f}s; JSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
