"""How big each phase is: the full run (the README's table, < 10 minutes here)
and the quick one the smoke test uses (a few seconds of work per phase)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    name: str
    post_jobs: int  # POST /jobs per round
    clients: int  # concurrent HTTP clients
    rounds: int  # jobyard and baseline alternate this many times; best of each kept
    e2e_jobs: int  # trivial jobs run end to end per round
    e2e_raw_tasks: int  # raw Celery round trips per round
    latency_samples: int  # sequential submit -> Running measurements
    ingest_jobs: int
    ingest_events: int  # per job, per round
    read_levels: tuple[int, ...]  # jobs stored when read latency is measured
    read_samples: int  # GETs per level (also bounded by read_budget seconds)
    read_budget: float
    scale_levels: tuple[int, ...]  # running jobs when the reconcile tick is timed
    real_jobs: int  # of those, started for real (the rest are clones, see bench.scale)
    ticks: int  # reconcile passes timed per level
    profile: bool
    churn_jobs: int = 0  # bench.churn (0: skipped; tests/e2e/test_churn.py runs it in CI)
    automl_histories: tuple[int, int] = (100, 1_000)  # ended trials: baseline, measured
    automl_search_trials: int = 16  # a search against the same runs as plain jobs
    automl_search_epochs: int = 5
    serve_requests: int = 4_000  # inference requests per side (through the API, direct)
    serve_rounds: int = 4  # the two sides alternate this many times


FULL = Plan(
    name="full",
    post_jobs=300,
    clients=8,
    rounds=2,
    e2e_jobs=200,
    e2e_raw_tasks=200,
    latency_samples=30,
    ingest_jobs=50,
    ingest_events=100,
    read_levels=(1_000, 10_000, 100_000),
    read_samples=300,
    read_budget=6.0,
    scale_levels=(10, 100, 1_000),
    real_jobs=100,
    ticks=5,
    profile=True,
    churn_jobs=2_000,
)
QUICK = Plan(
    name="quick",
    post_jobs=10,
    clients=2,
    rounds=1,
    e2e_jobs=3,
    e2e_raw_tasks=5,
    latency_samples=2,
    ingest_jobs=3,
    ingest_events=5,
    read_levels=(20, 60),
    read_samples=10,
    read_budget=1.0,
    scale_levels=(1, 2, 4),
    real_jobs=2,
    ticks=2,
    profile=False,
    automl_histories=(5, 20),
    automl_search_trials=4,
    automl_search_epochs=2,
    serve_requests=64,
    serve_rounds=2,
)
PLANS = {p.name: p for p in (FULL, QUICK)}
