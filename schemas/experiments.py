"""Base experiments: what a job can start from, as data.

jobyard ships one, the reference workload (a numpy MLP classifier on a digits
data set packaged with it). Its specs and JSON schemas come from
``jobyard.workloads.specs``, shaped as TAO's so seed 000's ``jq`` edits work.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jobyard.workloads import specs as reference_specs

_NAMESPACE = uuid.UUID("6f1c1d0e-4a53-4bd4-9a3e-6a6f62796172")


@dataclass(frozen=True)
class BaseExperiment:
    name: str
    network_arch: str
    ngc_path: str
    description: str
    actions: tuple[str, ...]
    command: tuple[str, ...]  # run by every backend; "python" is the backend's interpreter
    image: str  # for container backends (Kubernetes, Lepton)

    @property
    def id(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, self.ngc_path))

    def default_spec(self, action: str) -> dict[str, Any]:
        return reference_specs.default_spec(action)

    def json_schema(self, action: str) -> dict[str, Any]:
        return reference_specs.json_schema(action)

    def validate(self, action: str, spec: Any) -> list[str]:
        return reference_specs.validate(action, spec)

    def to_doc(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "network_arch": self.network_arch,
            "ngc_path": self.ngc_path,
            "description": self.description,
            "actions": list(self.actions),
            "is_base_experiment": True,
            "image": self.image,
        }


REFERENCE = BaseExperiment(
    name="digits_mlp",
    network_arch="classification_pyt",
    ngc_path="jobyard/classification_pyt:digits_mlp_v1",
    description="Reference workload: an MLP image classifier trained on the packaged digits set.",
    actions=tuple(reference_specs.ACTIONS),
    command=("python", "-m", "jobyard.workloads.classifier"),
    image="jobyard:latest",
)

BASE_EXPERIMENTS: dict[str, BaseExperiment] = {REFERENCE.id: REFERENCE}


def for_network_arch(network_arch: str) -> BaseExperiment | None:
    return next((b for b in BASE_EXPERIMENTS.values() if b.network_arch == network_arch), None)


class NoWorkload(ValueError):
    """No base experiment can run this job."""


def experiment_for(job: Mapping[str, Any]) -> BaseExperiment:
    """The base experiment a job names, or the one for its network_arch."""
    for base_id in job.get("base_experiment_ids") or []:
        if base_id in BASE_EXPERIMENTS:
            return BASE_EXPERIMENTS[base_id]
    found = for_network_arch(job.get("network_arch") or "")
    if found is None:
        arches = ", ".join(sorted({b.network_arch for b in BASE_EXPERIMENTS.values()}))
        raise NoWorkload(
            f"no base experiment runs network_arch {job.get('network_arch')!r} "
            f"(available: {arches}; see jobs:list_base_experiments)"
        )
    return found
