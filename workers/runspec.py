"""From a job document and its catalog entry to the RunSpec a backend starts (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobyard.backends.base import Handle, RunSpec
from jobyard.backends.registry import split_target
from jobyard.schemas.catalog import BaseExperiment


def effective_specs(job: Mapping[str, Any]) -> dict[str, Any]:
    """The spec the workload sees: the job's, with the top-level training knobs
    (early_stop_epoch, retain_checkpoints_for_resume) carried into it."""
    specs = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in job["specs"].items()}
    if job["action"] == "train":
        train = specs.setdefault("train", {})
        if job.get("early_stop_epoch") is not None:
            train["early_stop_epoch"] = job["early_stop_epoch"]
        if job.get("retain_checkpoints_for_resume"):
            train["retain_checkpoints_for_resume"] = True
    return specs


def run_spec(
    job: Mapping[str, Any],
    experiment: BaseExperiment,
    parent: Handle | None,
    secrets: Mapping[str, Any] | None = None,
) -> RunSpec:
    """``secrets``: the job's decrypted ``docker_env_vars`` and ``encryption_key``."""
    action = experiment.action(job["action"])
    secrets = secrets or {}
    key = secrets.get("encryption_key")
    return RunSpec(
        job_id=job["_id"],
        run=int(job["run"]),
        action=job["action"],
        command=action.command,
        specs=effective_specs(job),
        timeout_seconds=int(job["timeout_minutes"]) * 60,
        parent=parent,
        resources=dict(experiment.resources),
        options=dict(job.get("backend_details") or {}),
        network_arch=str(job.get("network_arch") or experiment.network_arch),
        org=str(job.get("org") or ""),
        image=experiment.image_for(split_target(str(job.get("backend") or "process"))[0]),
        spec_format=experiment.spec_format,
        spec_fields=dict(action.spec_fields),
        status_link=experiment.status_template(),
        parent_checkpoint=job.get("parent_checkpoint"),
        encryption_key_field=experiment.encryption_key_field,
        secret_env={str(k): str(v) for k, v in (secrets.get("docker_env_vars") or {}).items()},
        encryption_key=str(key) if key else None,
    )
