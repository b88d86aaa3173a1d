"""The workload contract, built in one place for every backend (``workloads/README.md``).

A run sees its job through ``JY_*`` variables and a few files: the spec it runs
(``JY_SPECS_FILE``), where to write results (``JY_RESULTS_DIR``, shared by every run of a
job) and status events (``JY_STATUS_FILE``), and its parent's results for derived actions
(``JY_PARENT_RESULTS_DIR``). Each backend decides only *where* those are, as its machines
see them (``RunPaths``); the rest lives here: the command rendered from the catalog's
template (``argv``), the spec file's text (``spec_text``, JSON or YAML with the entry's
``spec_fields`` filled in), where a ``tao``-protocol workload's own status file must point
(``status_link``), and the environment, whose names, filtering and order of precedence are:

1. what the run inherits (only the process backend passes its own environment on),
   never a ``JOBYARD_*`` setting and never a stale ``JY_*`` variable;
2. the job's own variables (``RunSpec.env``: dataset directories; ``RunSpec.secret_env``:
   the user's ``docker_env_vars``);
3. the backend's additions (``PYTHONUNBUFFERED``, Lepton's ``JY_SPECS_JSON``);
4. the contract itself, which nothing above can override.

No ``JOBYARD_*`` variable ever reaches a workload, whichever layer set it.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from jobyard.backends.base import RunSpec
from jobyard.backends.errors import SubmitRejected
from jobyard.schemas import templates
from jobyard.schemas.catalog import SPEC_FILES, set_dotted

SECRET_PREFIX = "JOBYARD_"
CONTRACT_PREFIX = "JY_"
RESULTS_DIR = "results"
SPECS_FILE = "specs.json"
STATUS_FILE = "status.jsonl"
LOG_FILE = "output.log"


@dataclass(frozen=True)
class RunPaths:
    """Where one run's files are, as the run's machines see them."""

    results_dir: str
    specs_file: str
    status_file: str
    parent_results_dir: str | None = None
    run_dir: str = ""


def job_layout(root: str, job_id: str, run: int) -> tuple[str, str]:
    """(results dir, run dir) of ``<root>/<job id>/results`` and ``.../run-<n>``: the
    layout the process, Kubernetes and Lepton backends share."""
    job_dir = posixpath.join(root, job_id)
    return posixpath.join(job_dir, RESULTS_DIR), posixpath.join(job_dir, f"run-{run}")


def run_paths(
    results_dir: str, run_dir: str, parent_results_dir: str | None, spec_format: str = "json"
) -> RunPaths:
    return RunPaths(
        results_dir=results_dir,
        specs_file=posixpath.join(run_dir, SPEC_FILES.get(spec_format, SPECS_FILE)),
        status_file=posixpath.join(run_dir, STATUS_FILE),
        parent_results_dir=parent_results_dir,
        run_dir=run_dir,
    )


def spec_file_name(spec: RunSpec) -> str:
    return SPEC_FILES.get(spec.spec_format, SPECS_FILE)


def parent_results_dir(spec: RunSpec) -> str | None:
    """The results directory the parent's handle records, for derived actions."""
    if spec.parent is None:
        return None
    found = spec.parent.data.get("results_dir")
    if not found:
        raise SubmitRejected(f"run {spec.name}: parent {spec.parent.name} has no results_dir")
    return str(found)


def _allowed(name: str) -> bool:
    return not name.startswith(SECRET_PREFIX)


def environment(
    spec: RunSpec,
    paths: RunPaths,
    *,
    inherited: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The run's environment, in the order of precedence the module docstring gives."""
    env = {
        k: v
        for k, v in (inherited or {}).items()
        if _allowed(k) and not k.startswith(CONTRACT_PREFIX)
    }
    for layer in (spec.env, spec.secret_env):
        env.update({str(k): str(v) for k, v in layer.items() if _allowed(str(k)) and _user(str(k))})
    env.update({k: v for k, v in (extra or {}).items() if _allowed(k)})
    env.update(
        JY_JOB_ID=spec.job_id,
        JY_RUN=str(spec.run),
        JY_ACTION=spec.action,
        JY_SPECS_FILE=paths.specs_file,
        JY_RESULTS_DIR=paths.results_dir,
        JY_STATUS_FILE=paths.status_file,
    )
    if paths.parent_results_dir is not None:
        env["JY_PARENT_RESULTS_DIR"] = paths.parent_results_dir
        if spec.parent_checkpoint:
            env["JY_PARENT_CHECKPOINT"] = parent_checkpoint(spec, paths)
    if spec.encryption_key:
        env["JY_ENCRYPTION_KEY"] = spec.encryption_key
    return env


def _user(name: str) -> bool:
    """The job's variables may not pose as the contract's (dataset directories excepted:
    jobyard itself sets those in ``RunSpec.env``)."""
    return not name.startswith(CONTRACT_PREFIX) or name in ENGINE_VARIABLES


# the variables the engine sets in ``RunSpec.env``: staging's (schemas/staging.py)
# JY_*_DATASET_DIR(S) and where a published model's checkpoint is; a model server's place
ENGINE_VARIABLES = frozenset(
    {
        "JY_TRAIN_DATASET_DIRS",
        "JY_EVAL_DATASET_DIR",
        "JY_INFERENCE_DATASET_DIR",
        "JY_CALIBRATION_DATASET_DIR",
        "JY_PRETRAINED_CHECKPOINT",
        "JY_SERVE_HOST",
        "JY_SERVE_PORT",
    }
)
# placeholder -> the variable its value comes from
_ENV_PLACEHOLDERS = {
    "train_dataset_dirs": "JY_TRAIN_DATASET_DIRS",
    "eval_dataset_dir": "JY_EVAL_DATASET_DIR",
    "inference_dataset_dir": "JY_INFERENCE_DATASET_DIR",
    "calibration_dataset_dir": "JY_CALIBRATION_DATASET_DIR",
    "pretrained_checkpoint": "JY_PRETRAINED_CHECKPOINT",
    "host": "JY_SERVE_HOST",
    "port": "JY_SERVE_PORT",
}


def parent_checkpoint(spec: RunSpec, paths: RunPaths) -> str:
    if not paths.parent_results_dir or not spec.parent_checkpoint:
        raise SubmitRejected(f"run {spec.name}: no parent checkpoint was chosen")
    return posixpath.join(paths.parent_results_dir, spec.parent_checkpoint)


# --- templates -----------------------------------------------------------------------


def values(spec: RunSpec, paths: RunPaths, python: str) -> dict[str, str]:
    """Every placeholder this run has a value for, as its machines see paths."""
    found = {
        "python": python,
        "action": spec.action,
        "job_id": spec.job_id,
        "run": str(spec.run),
        "network_arch": spec.network_arch,
        "spec_file": paths.specs_file,
        "results_dir": paths.results_dir,
        "run_dir": paths.run_dir,
        "status_file": paths.status_file,
    }
    if paths.parent_results_dir:
        found["parent_results_dir"] = paths.parent_results_dir
        if spec.parent_checkpoint:
            found["parent_checkpoint"] = parent_checkpoint(spec, paths)
    for name, variable in _ENV_PLACEHOLDERS.items():
        if spec.env.get(variable):
            found[name] = str(spec.env[variable])
    if "train_dataset_dirs" in found:
        found["train_dataset_dir"] = found["train_dataset_dirs"].split(os.pathsep)[0]
    for key in ("num_gpus", "gpu_type"):
        value = spec.options.get(key, spec.resources.get(key))
        if value is not None:
            found[key] = str(value)
    return found


def _render(spec: RunSpec, template: str, found: Mapping[str, str]) -> str:
    try:
        return templates.render(template, found)
    except templates.TemplateError as e:
        raise SubmitRejected(f"run {spec.name}: {e}") from e


def argv(spec: RunSpec, paths: RunPaths, python: str) -> list[str]:
    """The command to run, rendered from the catalog entry's template."""
    if not spec.command:
        raise SubmitRejected(f"run {spec.name}: empty command")
    found = values(spec, paths, python)
    rendered = [_render(spec, str(part), found) for part in spec.command]
    if rendered[0] == "python":  # a bare python is {python}, as the contract always had it
        rendered[0] = python
    return rendered


def spec_document(spec: RunSpec, paths: RunPaths, python: str) -> dict[str, Any]:
    """The spec the workload reads: the job's, with the entry's ``spec_fields`` rendered
    into it and the job's encryption key where the entry asks for it."""
    document: dict[str, Any] = json.loads(json.dumps(dict(spec.specs)))  # a JSON deep copy
    found = values(spec, paths, python)
    for key, template in spec.spec_fields.items():
        set_dotted(document, key, _render(spec, template, found))
    if spec.encryption_key and spec.encryption_key_field:
        set_dotted(document, spec.encryption_key_field, spec.encryption_key)
    return document


def spec_text(spec: RunSpec, paths: RunPaths, python: str) -> str:
    """The spec file's content, in the entry's format."""
    try:
        document = spec_document(spec, paths, python)
    except (TypeError, ValueError) as e:
        raise SubmitRejected(f"run {spec.name}: specs are not JSON: {e}") from e
    if spec.spec_format == "yaml":
        return str(yaml.safe_dump(document, sort_keys=False, default_flow_style=False))
    return json.dumps(document)


def status_link(spec: RunSpec, paths: RunPaths, python: str) -> tuple[str, str] | None:
    """(where the workload writes its own status file, what that path must link to, relative
    to the link's directory): a ``tao`` workload writes ``<results_dir>/status.json``, which
    every run of the job shares; linked to the run's own status file before each run starts,
    it is read where every other status file is, and each run's lines start afresh."""
    if not spec.status_link:
        return None
    link = _render(spec, spec.status_link, values(spec, paths, python))
    if not link.startswith("/"):
        link = posixpath.join(paths.results_dir, link)
    link = posixpath.normpath(link)
    return link, posixpath.relpath(paths.status_file, posixpath.dirname(link))
