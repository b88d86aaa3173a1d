"""Bench-only base experiments whose command is a trivial one (``true``, ``sleep N``),
imported into the bench database's catalog like any admin's entry (``register``), so
the API and workers the bench starts find them where they find every other entry.

A job picks one through ``base_experiment_ids``; specs are still validated against the
reference workload's schema, so the API path is the real one.
"""

from __future__ import annotations

import copy
from typing import Any

from jobyard.schemas.catalog import BaseExperiment, load_entry
from jobyard.workloads.catalog import reference_entry


def _entry(name: str, ngc_path: str, description: str, command: list[str]) -> BaseExperiment:
    data: dict[str, Any] = copy.deepcopy(reference_entry())
    data.update(name=name, ngc_path=ngc_path, description=description, command=command)
    data.pop("hyperparameters", None)
    return load_entry(data)


TRUE = _entry("bench_true", "jobyard/bench:true", "Bench only: runs `true`.", ["true"])
SLEEP = _entry(
    "bench_sleep",
    "jobyard/bench:sleep600",
    "Bench only: runs `sleep 600` (a cheap long-running job).",
    ["sleep", "600"],
)
SHORT = _entry("bench_short", "jobyard/bench:sleep1", "Bench only: runs `sleep 1`.", ["sleep", "1"])
# One line per start of the run's command, in its results directory: bench.churn counts
# launcher starts with it (a run started twice would write two).
COUNTED = _entry(
    "bench_counted",
    "jobyard/bench:counted",
    "Bench only: notes each start of the run, then exits 0.",
    ["sh", "-c", 'echo "$JY_JOB_ID" >> "$JY_RESULTS_DIR/starts"'],
)
ALL = (TRUE, SLEEP, SHORT, COUNTED)


def register(store: Any) -> None:
    """Add the bench experiments to the bench database's catalog (idempotent)."""
    for entry in ALL:
        store.catalog.put(entry)


def job_body(experiment: BaseExperiment, name: str) -> dict[str, object]:
    """A ``POST /jobs`` body running ``experiment``; a distinct name keeps the
    duplicate check (fingerprint) on its real path."""
    return {
        "kind": "experiment",
        "action": "train",
        "name": name,
        "network_arch": experiment.network_arch,
        "base_experiment_ids": [experiment.id],
    }
