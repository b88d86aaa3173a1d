"""Where a run's files live, as pure functions of (root, job id, run number).

Every caller (the backend in any worker, the launcher, tests) derives paths from here, so
a worker that restarts finds the same files from nothing but the handle.

``<root>/<job_id>/results/`` is shared by all runs of a job, so a resumed run finds the
checkpoints its predecessor left; ``<root>/<job_id>/run-<n>/`` holds one run's bookkeeping.
"""

from __future__ import annotations

from pathlib import Path

from jobyard.backends.contract import LOG_FILE, RESULTS_DIR, SPECS_FILE, STATUS_FILE

LAUNCH_FILE = "launch.json"
EXIT_FILE = "exit.json"
LAUNCHER_FILE = "launcher.pid"
EXITED_DIR = ".exited"  # under the root: one empty file per run that has ended


def check_job_id(job_id: str) -> str:
    """Reject ids that would escape the root or collide with layout names."""
    if not job_id or job_id in {".", ".."} or "/" in job_id or "\0" in job_id:
        raise ValueError(f"job id {job_id!r} cannot name a directory")
    return job_id


def job_dir(root: Path, job_id: str) -> Path:
    return root / check_job_id(job_id)


def results_dir(root: Path, job_id: str) -> Path:
    return job_dir(root, job_id) / RESULTS_DIR


def run_dir(root: Path, job_id: str, run: int) -> Path:
    if run < 0:
        raise ValueError(f"run number must not be negative, got {run}")
    return job_dir(root, job_id) / f"run-{run}"


def specs_file(run: Path) -> Path:
    return run / SPECS_FILE


def status_file(run: Path) -> Path:
    return run / STATUS_FILE


def log_file(run: Path) -> Path:
    return run / LOG_FILE


def launch_file(run: Path) -> Path:
    return run / LAUNCH_FILE


def exit_file(run: Path) -> Path:
    return run / EXIT_FILE


def launcher_file(run: Path) -> Path:
    return run / LAUNCHER_FILE


def exited_dir(root: Path) -> Path:
    """Where launchers leave a marker as their run ends: one listing tells a poll which of
    all its runs ended, so only those have their exit.json read."""
    return root / EXITED_DIR


def exited_marker(root: Path, run_name: str) -> Path:
    return exited_dir(root) / run_name


def root_of(run: Path) -> Path:
    """The root a run directory (``<root>/<job>/run-<n>``) lives under."""
    return run.parent.parent
