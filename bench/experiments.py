"""Bench-only base experiments whose command is a trivial one (``true``,
``sleep N``), registered into the product's built-in catalog inside bench
processes only (the API and worker are started through ``bench.serve``).

A job picks one through ``base_experiment_ids``; specs are still validated
against the reference workload's schema, so the API path is the real one.
"""

from __future__ import annotations

from jobyard.schemas.catalog import BaseExperiment
from jobyard.store import catalog

TRUE = BaseExperiment(
    name="bench_true",
    network_arch="classification_pyt",
    ngc_path="jobyard/bench:true",
    description="Bench only: runs `true`.",
    actions=catalog.REFERENCE.actions,
    command=("true",),
    image="busybox",
    default_specs=catalog.REFERENCE.default_specs,
    json_schemas=catalog.REFERENCE.json_schemas,
)
SLEEP = BaseExperiment(
    name="bench_sleep",
    network_arch="classification_pyt",
    ngc_path="jobyard/bench:sleep600",
    description="Bench only: runs `sleep 600` (a cheap long-running job).",
    actions=catalog.REFERENCE.actions,
    command=("sleep", "600"),
    image="busybox",
    default_specs=catalog.REFERENCE.default_specs,
    json_schemas=catalog.REFERENCE.json_schemas,
)
SHORT = BaseExperiment(
    name="bench_short",
    network_arch="classification_pyt",
    ngc_path="jobyard/bench:sleep1",
    description="Bench only: runs `sleep 1`.",
    actions=catalog.REFERENCE.actions,
    command=("sleep", "1"),
    image="busybox",
    default_specs=catalog.REFERENCE.default_specs,
    json_schemas=catalog.REFERENCE.json_schemas,
)
ALL = (TRUE, SLEEP, SHORT)


def register() -> None:
    """Add the bench experiments to this process's table (idempotent)."""
    known = {e.id for e in catalog.BUILTIN}
    catalog.BUILTIN = (*catalog.BUILTIN, *(e for e in ALL if e.id not in known))


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
