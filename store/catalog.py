"""The base experiments jobs can start from: the built-in entries, looked up by id or by
network.

The entries are data (``schemas.catalog.BaseExperiment``); the built-in reference
workload publishes its own (``workloads.catalog``). The API and the engine ask this
catalog, never a workload module, which network runs what.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jobyard.schemas.catalog import BaseExperiment, find
from jobyard.workloads.catalog import reference_entry

REFERENCE = BaseExperiment.from_data(reference_entry())
BUILTIN: tuple[BaseExperiment, ...] = (REFERENCE,)


class Catalog:
    def __init__(self, entries: Iterable[BaseExperiment] | None = None) -> None:
        self._entries = {e.id: e for e in (BUILTIN if entries is None else entries)}

    def list(self) -> list[BaseExperiment]:
        return list(self._entries.values())

    def get(self, experiment_id: str) -> BaseExperiment | None:
        return self._entries.get(experiment_id)

    def for_job(self, job: Mapping[str, Any]) -> BaseExperiment:
        """The entry a job runs: ``NoWorkload`` says why there is none."""
        return find(self._entries.values(), job)

    def add(self, entry: BaseExperiment) -> None:
        self._entries.setdefault(entry.id, entry)
