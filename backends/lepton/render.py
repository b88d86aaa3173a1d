"""The Lepton job body for one run, as a pure function of the run and the workspace.

How the workload contract crosses into a container that shares no disk with jobyard:

* the spec file's text travels in the ``JY_SPECS_JSON`` variable; the ``entrypoint`` wrapper
  writes it to ``JY_SPECS_FILE`` before starting the workload (and links a tao workload's
  own status file, ``JY_STATUS_LINK``, to the run's);
* ``JY_RESULTS_DIR`` is ``<results_root>/<job id>/results`` on the shared volume the
  workspace mounts, so every run of a job sees the same checkpoints;
* status lines come back through the replica log behind a marker (see ``stream``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from typing import Any

from jobyard.backends import contract
from jobyard.backends.base import RunSpec
from jobyard.backends.errors import SubmitRejected
from jobyard.backends.lepton.config import LeptonConfig

MAX_ID_LENGTH = 36
ENTRYPOINT = ("python", "-m", "jobyard.backends.lepton.entrypoint", "--")
PYTHON = "python"  # the image's interpreter, for the catalog's {python}
SPECS_VARIABLE = "JY_SPECS_JSON"  # the spec file's text (named when specs were JSON only)
STATUS_LINK_VARIABLE = "JY_STATUS_LINK"
CPU_SHAPE = "cpu.small"
MANAGED_BY = "jobyard"
LABEL_MANAGED = "managed-by"
LABEL_JOB = "jobyard-job"
LABEL_RUN = "jobyard-run"
_GPU_TYPE = re.compile(r"[a-z0-9][a-z0-9-]*")
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")


def lepton_job_id(job_id: str, run: int) -> str:
    """A valid Lepton job id (``[a-z][a-z0-9-]*``, at most 36) for run ``run`` of a job.

    Readable prefix from the job id, then the run, then 8 hex digits of a hash of the
    exact (job id, run), so two job ids that differ only where the prefix was cut or
    lower-cased still get different Lepton ids. Deterministic: a retried submit finds
    the job it already created.
    """
    digest = hashlib.sha256(f"{job_id}\0{run}".encode()).hexdigest()[:8]
    tail = f"-r{run}-{digest}"
    room = MAX_ID_LENGTH - len("jy-") - len(tail)
    slug = re.sub(r"[^a-z0-9]+", "-", job_id.lower()).strip("-")[: max(room, 0)].strip("-")
    name = f"jy-{slug}{tail}" if slug else f"jy{tail}"
    if len(name) > MAX_ID_LENGTH:
        raise SubmitRejected(f"run number {run} is too large for a Lepton job id")
    return name


def run_paths(
    config: LeptonConfig, job_id: str, run: int, spec_format: str = "json"
) -> contract.RunPaths:
    """Container paths of one run: shared results dir, per-run specs and status files."""
    root = config.results_root.rstrip("/") or "/"
    results_dir, run_dir = contract.job_layout(root, job_id, run)
    return contract.run_paths(results_dir, run_dir, None, spec_format)


def container_paths(spec: RunSpec, config: LeptonConfig) -> contract.RunPaths:
    return dataclasses.replace(
        run_paths(config, spec.job_id, spec.run, spec.spec_format),
        parent_results_dir=contract.parent_results_dir(spec),
    )


def resource_shape(spec: RunSpec) -> str:
    """``cpu.small``, ``gpu.a100`` or ``gpu.4xa100`` from backend_details (``num_gpus``,
    ``gpu_type``); the action's spec supplies ``num_gpus`` only once a GPU type is named,
    since the reference spec records a GPU count even for CPU runs."""
    options = spec.options
    gpu_type = options.get("gpu_type")
    count = options.get("num_gpus")
    if count is None and gpu_type:
        action_spec = spec.specs.get(spec.action)
        if isinstance(action_spec, Mapping):
            count = action_spec.get("num_gpus")
    if not count:
        return CPU_SHAPE
    if not isinstance(count, int) or count < 0:
        raise SubmitRejected(f"run {spec.name}: num_gpus must be a whole number, not {count!r}")
    if not gpu_type:
        raise SubmitRejected(
            f"run {spec.name}: num_gpus={count} on Lepton needs backend_details.gpu_type "
            "(for example a100 or h100-sxm) to choose a resource shape"
        )
    gpu = str(gpu_type).lower()
    if not _GPU_TYPE.fullmatch(gpu):
        raise SubmitRejected(f"run {spec.name}: gpu_type {gpu_type!r} is not a Lepton GPU name")
    return f"gpu.{gpu}" if count == 1 else f"gpu.{count}x{gpu}"


def contract_env(spec: RunSpec, config: LeptonConfig) -> dict[str, str]:
    """The contract (``backends.contract``), with the spec file's text in ``JY_SPECS_JSON``
    (JSON or YAML, as the entry says) and a tao workload's own status file in
    ``JY_STATUS_LINK``: the container shares no disk with jobyard, so the entrypoint writes
    the spec file and makes the link."""
    paths = container_paths(spec, config)
    extra = {"PYTHONUNBUFFERED": "1", SPECS_VARIABLE: contract.spec_text(spec, paths, PYTHON)}
    link = contract.status_link(spec, paths, PYTHON)
    if link is not None:
        extra[STATUS_LINK_VARIABLE] = link[0]
    return contract.environment(spec, paths, extra=extra)


def labels(spec: RunSpec) -> dict[str, str]:
    """Labels that let one list call find every run jobyard started in the workspace."""
    found = {LABEL_MANAGED: MANAGED_BY, LABEL_RUN: str(spec.run)}
    if _LABEL_VALUE.fullmatch(spec.job_id):
        found[LABEL_JOB] = spec.job_id
    return found


def render_job_body(spec: RunSpec, config: LeptonConfig) -> dict[str, Any]:
    """The ``POST /jobs`` body for ``spec``: one replica, no platform retries (a retry
    would replay the status file into a fresh log; jobyard decides about retries)."""
    command = contract.argv(spec, container_paths(spec, config), PYTHON)
    job_id = lepton_job_id(spec.job_id, spec.run)
    env = contract_env(spec, config)
    body_spec: dict[str, Any] = {
        "resource_shape": resource_shape(spec),
        "container": {
            "image": str(spec.image or spec.resources.get("image") or config.image),
            "command": [*ENTRYPOINT, *command],
        },
        "completions": 1,
        "parallelism": 1,
        "max_failure_retry": 0,
        "max_job_failure_retry": 0,
        "envs": [{"name": name, "value": env[name]} for name in sorted(env)],
        "mounts": [dict(m) for m in config.mounts],
        "image_pull_secrets": list(config.image_pull_secrets),
        "ttl_seconds_after_finished": config.ttl_seconds_after_finished,
    }
    node_group = spec.options.get("platform_id") or config.node_group
    if node_group:
        body_spec["affinity"] = {"allowed_dedicated_node_groups": [str(node_group)]}
    return {"metadata": {"id": job_id, "name": job_id, "labels": labels(spec)}, "spec": body_spec}
