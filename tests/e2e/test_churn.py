"""Churn without loss (issue: operators): 2,000 trivial jobs accepted at full speed by two
worker pools of two processes, while a worker is SIGKILLed (its whole process group) and
restarted every few seconds, Redis is restarted empty once and the API SIGKILLed and
restarted once. Every job the API answered 201 for, and every job it stored, ends Done;
each run's command started exactly once (the workload notes each start in its results
directory); none is stuck. ``bench/churn.py`` is the harness; ``python -m bench --only
churn`` reports the same run's drain time against one without faults."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import churn
from bench.servers import bench_servers

pytestmark = pytest.mark.integration
JOBS = 2_000


def test_two_thousand_jobs_through_killed_workers_and_restarted_redis_and_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("JOBYARD_MONGO_URI", "JOBYARD_REDIS_URL"):  # its own servers, to restart
        monkeypatch.delenv(name, raising=False)
    with bench_servers(tmp_path) as bench:
        outcome, _ = churn.run(bench, JOBS, True, bench.start_api())
    summary = outcome.summary()
    assert len(outcome.accepted) == JOBS, summary
    assert outcome.not_done == {}, summary  # none stuck, none lost
    assert outcome.started_twice == [] and outcome.never_started == [], summary
    assert set(outcome.starts) >= set(outcome.accepted)
    faults = " | ".join(outcome.events)
    assert faults.count("SIGKILL worker") >= 3, faults
    assert "Redis started, empty" in faults and "API up again" in faults, faults
    assert outcome.refused > 0, "the API restart was not felt by the clients: " + faults
