"""The workload contract, built in one place for every backend (``workloads/README.md``).

A run sees its job through ``JY_*`` variables and a few files: the spec it runs
(``JY_SPECS_FILE``), where to write results (``JY_RESULTS_DIR``, shared by every run of a
job) and status events (``JY_STATUS_FILE``), and its parent's results for derived actions
(``JY_PARENT_RESULTS_DIR``). Each backend decides only *where* those are, as its machines
see them (``RunPaths``); the names, the filtering and the order of precedence live here:

1. what the run inherits (only the process backend passes its own environment on),
   never a ``JOBYARD_*`` setting and never a stale ``JY_*`` variable;
2. the job's own variables (``RunSpec.env``: dataset directories, later the user's);
3. the backend's additions (``PYTHONUNBUFFERED``, Lepton's ``JY_SPECS_JSON``);
4. the contract itself, which nothing above can override.

No ``JOBYARD_*`` variable ever reaches a workload, whichever layer set it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from jobyard.backends.base import RunSpec
from jobyard.backends.errors import SubmitRejected

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


def job_layout(root: str, job_id: str, run: int) -> tuple[str, str]:
    """(results dir, run dir) of ``<root>/<job id>/results`` and ``.../run-<n>``: the
    layout the process, Kubernetes and Lepton backends share."""
    job_dir = posixpath.join(root, job_id)
    return posixpath.join(job_dir, RESULTS_DIR), posixpath.join(job_dir, f"run-{run}")


def run_paths(results_dir: str, run_dir: str, parent_results_dir: str | None) -> RunPaths:
    return RunPaths(
        results_dir=results_dir,
        specs_file=posixpath.join(run_dir, SPECS_FILE),
        status_file=posixpath.join(run_dir, STATUS_FILE),
        parent_results_dir=parent_results_dir,
    )


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
    env.update({str(k): str(v) for k, v in spec.env.items() if _allowed(str(k))})
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
    return env
