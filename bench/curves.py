"""``GET /jobs/{id}:metrics`` for a 1,000-epoch job (four curves, 4,000 scalar events),
against reading the same events raw with pymongo, and against one job page load (the
job, events and log requests the dashboard's job page makes), in the same run. The
curves come from ``store.curves`` (grown at ingest), so the endpoint reads four
documents, not the 4,000 events."""

from __future__ import annotations

import time
from typing import Any

from bench import experiments
from bench.client import Api, login
from bench.plan import Plan
from bench.servers import Bench
from bench.stats import Figure, latencies, percentile

ORG = "curves"
EPOCHS = 1000
CURVES = (("loss", "train"), ("accuracy", "train"), ("loss", "val"), ("accuracy", "val"))


def _job(bench: Bench) -> str:
    fields = {
        **experiments.job_body(experiments.TRUE, "curves"),
        "specs": experiments.TRUE.default_spec("train"),
        "timeout_minutes": 60,
    }
    doc = bench.store.jobs.create(ORG, "bench", fields, "process", "curves")
    events: list[dict[str, Any]] = []
    for epoch in range(1, EPOCHS + 1):
        for metric, variant in CURVES:
            value = 1.0 / epoch if metric == "loss" else 1.0 - 1.0 / (epoch + 1)
            events.append(
                {
                    "seq": len(events) + 1,
                    "type": "scalar",
                    "ts": time.time(),
                    "metric": metric,
                    "variant": variant,
                    "iteration": epoch,
                    "value": value,
                }
            )
    batch = [(doc["_id"], ORG, 1, events)]
    bench.store.events.ingest_many(batch)  # what ingest writes for a tick's events
    bench.store.curves.append_many(batch)
    return str(doc["_id"])


def _ms(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {"p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99), "n": len(ms)}


def curve_latency(bench: Bench, plan: Plan) -> list[Figure]:
    api: Api = login(bench, ORG)
    job_id = _job(bench)
    coll = bench.store.db.job_events
    samples, budget = max(5, plan.read_samples // 10), plan.read_budget

    def metrics(_: int) -> None:
        status, body = api.call("GET", api.org_path(f"jobs/{job_id}:metrics"))
        assert status == 200 and len(body["metrics"]["loss"]["val"]["x"]) == EPOCHS, status

    def raw(_: int) -> None:
        query = {"org": ORG, "job_id": job_id, "type": "scalar"}
        found = list(coll.find(query, {"_id": 0, "org": 0}).sort([("run", 1), ("seq", 1)]))
        assert len(found) == EPOCHS * len(CURVES)

    def page(_: int) -> None:
        """What the dashboard's job page asks besides the curves when it opens."""
        for path in (f"jobs/{job_id}", f"jobs/{job_id}:events", f"jobs/{job_id}:logs"):
            status, _body = api.call("GET", api.org_path(path))
            assert status == 200, (path, status)

    got = {
        "metrics": _ms(latencies(metrics, samples, budget)),
        "raw_events": _ms(latencies(raw, samples, budget)),
        "job_page": _ms(latencies(page, samples, budget)),
    }
    ours, base, job_page = (got[k]["p99_ms"] for k in ("metrics", "raw_events", "job_page"))
    return [
        Figure(
            f"GET /jobs/{{id}}:metrics p99, {EPOCHS:,} epochs × {len(CURVES)} curves",
            "ms",
            ours,
            base,
            "the same events read raw (pymongo find)",
            f"under one job page load (the dashboard's job, events and log requests: "
            f"p99 {job_page:.1f} ms, same run)",
            ours < job_page,
            got,
        )
    ]
