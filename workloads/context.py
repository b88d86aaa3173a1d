"""What one workload process knows about its job: the environment contract and the stop flag.

Backends start the workload with ``JY_*`` environment variables (see README.md); this module
turns them into a ``Context`` and owns the SIGTERM handling, which only raises a flag: the
actions look at the flag at safe points (mini-batch boundaries) and pause cleanly there,
instead of dying halfway through writing a checkpoint.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from jobyard.workloads.specs import ACTIONS
from jobyard.workloads.status import StatusWriter

EXIT_SUCCESS = 0
EXIT_FAILURE = 1
EXIT_BAD_SPEC = 2
EXIT_PAUSED = 75  # EX_TEMPFAIL: "try again later", i.e. resume this job

ENV_JOB_ID = "JY_JOB_ID"
ENV_RUN = "JY_RUN"
ENV_ACTION = "JY_ACTION"
ENV_SPECS_FILE = "JY_SPECS_FILE"
ENV_RESULTS_DIR = "JY_RESULTS_DIR"
ENV_STATUS_FILE = "JY_STATUS_FILE"
ENV_PARENT_RESULTS_DIR = "JY_PARENT_RESULTS_DIR"
ENV_PARENT_CHECKPOINT = "JY_PARENT_CHECKPOINT"
ENV_PRETRAINED_CHECKPOINT = "JY_PRETRAINED_CHECKPOINT"
ENV_TRAIN_DATASET_DIRS = "JY_TRAIN_DATASET_DIRS"


class UsageError(Exception):
    """The process was started wrongly (environment or spec): exit 2, nothing to retry.

    ``errors`` lists the individual spec problems, one dotted path each, when there are any.
    """

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = list(errors or [])


class Paused(Exception):
    """A stop was requested; raised by the short actions at their next safe point."""


class StopFlag:
    """Set by SIGTERM; polled by the actions. The handler does nothing else on purpose."""

    def __init__(self) -> None:
        self.requested = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def install(self) -> Any:
        """Route SIGTERM to this flag; returns the previous handler for ``restore``."""
        return signal.signal(signal.SIGTERM, self._handle)

    @staticmethod
    def restore(previous: Any) -> None:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


@dataclass
class Context:
    """One run of one job: identity, where to read and write, and how to report."""

    job_id: str
    run: int
    action: str
    specs_file: Path
    results_dir: Path
    parent_results_dir: Path | None
    status: StatusWriter
    stop: StopFlag
    # the checkpoint jobyard chose from the parent's files (checkpoint_choose_method)
    parent_checkpoint: Path | None = None
    # a published model's checkpoint a fresh train job starts from (transfer learning)
    pretrained_checkpoint: Path | None = None
    train_dataset_dirs: tuple[Path, ...] = ()

    def check_stop(self) -> None:
        """Raise ``Paused`` if SIGTERM arrived; called by actions between units of work."""
        if self.stop.requested:
            raise Paused()

    def log(self, message: str) -> None:
        """Human-readable progress on stdout, which is the job's log; flushed for tailing."""
        print(message, flush=True)


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value:
        raise UsageError(f"environment variable {name} is not set")
    return value


def _absolute(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name, "")
    if not value:
        return None
    path = Path(value)
    if not path.is_absolute():
        raise UsageError(f"{name}={value!r} is not an absolute path")
    return path


def context_from_env(env: Mapping[str, str], status: StatusWriter, stop: StopFlag) -> Context:
    """Read the ``JY_*`` variables (the parent's and the datasets' are optional).

    Creates the results directory, which all runs of a job share.
    """
    job_id = _required(env, ENV_JOB_ID)
    action = _required(env, ENV_ACTION)
    if action not in ACTIONS:
        raise UsageError(f"{ENV_ACTION}={action!r} is not one of {', '.join(ACTIONS)}")
    run_text = _required(env, ENV_RUN)
    try:
        run = int(run_text)
    except ValueError:
        raise UsageError(f"{ENV_RUN}={run_text!r} is not an integer") from None
    if run < 1:
        raise UsageError(f"{ENV_RUN}={run} must be 1 or more")
    specs_file = Path(_required(env, ENV_SPECS_FILE))
    results_dir = Path(_required(env, ENV_RESULTS_DIR))
    results_dir.mkdir(parents=True, exist_ok=True)
    parent = env.get(ENV_PARENT_RESULTS_DIR, "")
    datasets = env.get(ENV_TRAIN_DATASET_DIRS, "").split(os.pathsep)
    return Context(
        job_id=job_id,
        run=run,
        action=action,
        specs_file=specs_file,
        results_dir=results_dir,
        parent_results_dir=Path(parent) if parent else None,
        status=status,
        stop=stop,
        parent_checkpoint=_absolute(env, ENV_PARENT_CHECKPOINT),
        pretrained_checkpoint=_absolute(env, ENV_PRETRAINED_CHECKPOINT),
        train_dataset_dirs=tuple(Path(d) for d in datasets if d),
    )
