"""The benchmark suite still runs: ``python -m bench --quick`` with tiny sizes
(its own Redis and nx-27017, the real API and workers). Not a timed test: it
checks that every phase produced its figures, never how fast they were."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
EXPECTED = (
    "POST /jobs accepted",
    "trivial jobs end to end (`true`)",
    "submit → Running latency p50",
    "events ingested by reconcile",
)


def test_quick_bench_run_reports_every_figure_with_its_baseline(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    figures = {f["name"]: f for f in report["figures"]}
    for name in EXPECTED:
        assert name in figures, sorted(figures)
    assert all(f["value"] > 0 for f in figures.values())
    for name in ("POST /jobs accepted", "events ingested by reconcile"):
        assert figures[name]["baseline"] > 0 and figures[name]["ratio"] is not None
    assert any(n.startswith("reconcile pass at") for n in figures)
    assert any(n.startswith("GET /jobs/{id} p99") for n in figures)
    assert figures["trivial jobs end to end (`true`)"]["detail"]["jobs_in_error"] == 0
    assert "figure" in result.stdout  # the table was printed
