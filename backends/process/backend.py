"""The process backend: runs each job's command as a local process group.

Nothing lives in memory between calls. ``submit`` starts ``launcher`` (see its docstring
for the process tree) and records the launcher's pid and start time in ``launch.json``
and in the handle; ``poll``, ``read_output``, ``stop`` and ``cleanup`` work from the
handle and the run directory alone, so any worker, including one that restarted, can
manage any run. The layout is described in ``layout``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any, ClassVar

from jobyard.backends import contract
from jobyard.backends.base import (
    CPU,
    EXIT_PAUSED,
    Accelerator,
    Backend,
    Capability,
    Endpoint,
    Handle,
    Offsets,
    Output,
    ResultFile,
    RunSpec,
    RunState,
    RunStatus,
    free_port,
)
from jobyard.backends.errors import BackendUnavailable, SubmitRejected
from jobyard.backends.output import output_chunk, read_chunk
from jobyard.backends.process import launcher, layout, procfs
from jobyard.backends.process.files import read_json, write_json, write_run_files
from jobyard.backends.results import delete_local, list_local, open_local, results_root
from jobyard.schemas.settings import Settings

logger = logging.getLogger(__name__)

VANISHED = "process vanished without an exit code"
ADOPT_WAIT_SECONDS = 2.0  # how long a retried submit waits for a launcher still starting


class ProcessBackend(Backend):
    name: ClassVar[str] = "process"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.GRACEFUL_STOP})

    def __init__(self, root: Path, grace_period_seconds: float = 30.0) -> None:
        self.root = Path(root)
        # The engine waits this long between stop(graceful=True) and stop(graceful=False);
        # kept here so the backend can report it, the backend itself never sleeps on it.
        self.grace_period_seconds = grace_period_seconds
        self._exited_ready = False  # the markers' directory exists (made at first launch)

    @classmethod
    def from_settings(
        cls, settings: Settings, config: Mapping[str, Any] | None = None
    ) -> ProcessBackend:
        return cls(settings.runs_dir, settings.grace_period_seconds)

    # -- submit ----------------------------------------------------------------------

    def submit(self, spec: RunSpec) -> Handle:
        run_dir, results_dir = self._dirs(spec)
        try:
            _make_dirs(run_dir, results_dir)
            with _locked(run_dir):
                existing = read_json(layout.launch_file(run_dir))
                if existing is not None:
                    handle = _handle(spec, run_dir, results_dir, existing)
                    logger.info("run %s already started (pid %d)", spec.name, handle.data["pid"])
                    return handle
                launch = self._launch(spec, run_dir, results_dir)
                write_json(layout.launch_file(run_dir), launch)
        except OSError as e:
            raise BackendUnavailable(f"cannot start run {spec.name}: {e}") from e
        except (KeyError, TypeError, ValueError) as e:
            raise BackendUnavailable(f"run {spec.name}: unreadable launch.json: {e}") from e
        logger.info("started run %s: pid %d in %s", spec.name, launch["pid"], run_dir)
        return _handle(spec, run_dir, results_dir, launch)

    def _dirs(self, spec: RunSpec) -> tuple[Path, Path]:
        try:
            return (
                layout.run_dir(self.root, spec.job_id, spec.run),
                layout.results_dir(self.root, spec.job_id),
            )
        except ValueError as e:
            raise SubmitRejected(f"run {spec.name}: {e}") from e

    def _launch(self, spec: RunSpec, run_dir: Path, results_dir: Path) -> dict[str, Any]:
        """Write the spec and start the launcher, or adopt the one an earlier submit started
        (a worker killed between starting it and recording it: ``launcher.pid`` says so)."""
        pid = launcher.read_launcher_pid(run_dir)
        if pid is None and (run_dir / contract.spec_file_name(spec)).exists():
            # an earlier submit wrote the spec, then may have started a launcher and died
            # before recording it: a starting launcher takes its pid file within moments
            pid = _wait_for_launcher(run_dir)
        if pid is not None:
            logger.warning("run %s: adopting launcher %d started earlier", spec.name, pid)
            stat = procfs.read_stat(pid)
        else:
            paths = run_paths(spec, run_dir, results_dir)
            argv = contract.argv(spec, paths, sys.executable)
            write_run_files(spec, paths, sys.executable, run_dir, results_dir)
            env = contract.environment(spec, paths, inherited=os.environ)
            exited = layout.exited_marker(self.root, spec.name)
            if not self._exited_ready:
                exited.parent.mkdir(exist_ok=True)
                self._exited_ready = True
            proc = launcher.start(run_dir, exited, argv, env, results_dir)
            pid = proc.pid
            stat = procfs.read_stat(pid)  # our child, not reaped yet: its entry is there
        return {
            "pid": pid,
            "pgid": pid,  # the launcher leads its own session and process group
            "start_ticks": stat.start_ticks if stat is not None else None,
            "started_at": time.time(),
        }

    # -- poll ------------------------------------------------------------------------

    def poll(self, handles: Sequence[Handle]) -> dict[str, RunStatus]:
        launcher.reap()
        try:
            ended = _ended(handles)
            return {handle.name: self._status(handle, handle.name in ended) for handle in handles}
        except OSError as e:
            raise BackendUnavailable(f"cannot read run state: {e}") from e

    def _status(self, handle: Handle, ended: bool) -> RunStatus:
        run_dir = _run_dir(handle)
        if run_dir is None:
            return RunStatus(RunState.LOST, reason=f"run directory of {handle.name} not found")
        # in the handle since submit; launch.json only for handles written before that
        started_at = _float(handle.data.get("started_at")) or _started_at(run_dir)
        if ended and (finished := _finished_status(run_dir, started_at)) is not None:
            return finished
        pid, _ = _identity(handle)
        if pid is None:
            return RunStatus(RunState.LOST, reason=f"run {handle.name} has no launcher pid")
        if _live_launcher(handle, run_dir) is not None:
            return RunStatus(RunState.RUNNING, started_at=started_at)
        # Gone: it may have ended since the listing (or before markers existed), or never
        # have recorded an exit at all.
        if not run_dir.is_dir():
            return RunStatus(RunState.LOST, reason=f"run directory of {handle.name} not found")
        finished = _finished_status(run_dir, started_at)
        if finished is not None:
            return finished
        logger.warning("run %s: launcher pid %d is gone without an exit code", handle.name, pid)
        return RunStatus(RunState.KILLED, reason=VANISHED, started_at=started_at)

    # -- read_output -----------------------------------------------------------------

    def read_output(
        self, requests: Sequence[tuple[Handle, Offsets]], max_bytes: int
    ) -> dict[str, Output]:
        try:
            # the markers are listed *before* reading: a run listed as ended wrote its last
            # byte before its marker appeared
            ended = _ended([handle for handle, _ in requests])
            return {
                handle.name: _output(handle, where, max_bytes, handle.name in ended)
                for handle, where in requests
            }
        except OSError as e:
            raise BackendUnavailable(f"cannot read run output: {e}") from e

    def serving_endpoint(self, spec: RunSpec) -> Endpoint:
        """A free loopback port of this machine: the API reaches the server there (the
        embedded default runs the API, the worker and the runs on one machine)."""
        port = free_port()
        return Endpoint("127.0.0.1", port, f"http://127.0.0.1:{port}")

    def staging_dir(self, spec: RunSpec) -> str | None:
        """Per job, not per run: a resumed run reuses what the first one staged."""
        return str(layout.job_dir(self.root, spec.job_id) / "datasets")

    def accelerators(self) -> list[Accelerator]:
        """Runs are processes on the worker's machine; this backend hands out no GPUs."""
        return [Accelerator(CPU, 0, "local")]

    # -- results ---------------------------------------------------------------------

    def list_results(self, handle: Handle) -> list[ResultFile]:
        return list_local(Path(results_root(handle)), handle.name)

    def delete_results(self, files: Sequence[tuple[Handle, str]]) -> int:
        return delete_local(files)

    def open_result(self, handle: Handle, path: str) -> AbstractContextManager[IO[bytes]]:
        return open_local(Path(results_root(handle)), path, handle.name)

    # -- stop / cleanup --------------------------------------------------------------

    def stop(self, handle: Handle, graceful: bool) -> None:
        # SIGTERM: the workload checkpoints and exits 75 (the launcher ignores it); SIGKILL: now.
        signum = signal.SIGTERM if graceful else signal.SIGKILL
        run_dir = _run_dir(handle)
        if run_dir is not None and layout.exit_file(run_dir).exists():
            logger.info("run %s already finished; nothing to stop", handle.name)
            return
        pid, ticks = _identity(handle)
        if run_dir is not None and (followed := _live_launcher(handle, run_dir)) is not None:
            pid, ticks = followed
        if pid is None or ticks is None or not _group_is_ours(handle.name, pid, ticks):
            return
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            logger.info("run %s: process group %d already gone", handle.name, pid)
            return
        except OSError as e:
            raise BackendUnavailable(f"cannot signal run {handle.name}: {e}") from e
        logger.info("run %s: sent %s to process group %d", handle.name, signum.name, pid)

    def cleanup(self, handle: Handle) -> None:
        """Kill what still runs and drop the run's marker; status, log and results stay."""
        run_dir = _run_dir(handle)
        if run_dir is None:
            return
        if not layout.exit_file(run_dir).exists() and _live_launcher(handle, run_dir):
            logger.warning("run %s still running at cleanup; killing it", handle.name)
            self.stop(handle, graceful=False)
        layout.exited_marker(layout.root_of(run_dir), handle.name).unlink(missing_ok=True)


# -- launching -----------------------------------------------------------------------


def run_paths(spec: RunSpec, run_dir: Path, results_dir: Path) -> contract.RunPaths:
    """The contract's paths: on this machine the run sees what the worker sees."""
    return contract.run_paths(
        str(results_dir), str(run_dir), contract.parent_results_dir(spec), spec.spec_format
    )


def _wait_for_launcher(run_dir: Path, seconds: float = ADOPT_WAIT_SECONDS) -> int | None:
    deadline = time.monotonic() + seconds
    while (pid := launcher.read_launcher_pid(run_dir)) is None and time.monotonic() < deadline:
        time.sleep(0.005)
    return pid


def _make_dirs(run_dir: Path, results_dir: Path) -> None:
    """The job's directory, the run's and the shared results directory: one mkdir each
    (directory operations are what a submit mostly costs on a slow disk)."""
    for path in (run_dir.parent, run_dir, results_dir):
        try:
            os.mkdir(path)
        except FileExistsError:
            pass
        except FileNotFoundError:  # the runs directory itself is new
            os.makedirs(path, exist_ok=True)


@contextlib.contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    """Exclusive flock on the run's directory: one submit per run at a time, across
    threads and processes, so concurrent submits return the same handle.

    The kernel drops the lock when the holder dies, even by SIGKILL; the fd is not
    inheritable, so the launcher never holds it. That at most one launcher runs the
    workload is the launcher's own guarantee (``launcher.pid``), whatever happens here.
    """
    fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# -- reading state -------------------------------------------------------------------


def _handle(spec: RunSpec, run_dir: Path, results_dir: Path, launch: Mapping[str, Any]) -> Handle:
    return Handle(
        ProcessBackend.name,
        spec.name,
        {
            "job_id": spec.job_id,
            "run": spec.run,
            "run_dir": str(run_dir),
            "results_dir": str(results_dir),
            "pid": int(launch["pid"]),
            "start_ticks": _int(launch.get("start_ticks")),
            "started_at": _float(launch.get("started_at")),
        },
    )


def _run_dir(handle: Handle) -> Path | None:
    value = handle.data.get("run_dir")
    return Path(value) if value else None


def _identity(handle: Handle) -> tuple[int | None, int | None]:
    """(launcher pid, its start ticks) from the handle."""
    pid, ticks = handle.data.get("pid"), handle.data.get("start_ticks")
    return (
        pid if isinstance(pid, int) else None,
        ticks if isinstance(ticks, int) else None,
    )


def _live_launcher(handle: Handle, run_dir: Path) -> tuple[int, int] | None:
    """(pid, start ticks) of the launcher running the workload, while it runs.

    Normally the one the handle names. A submit that raced a launcher an earlier, killed
    submit had started records the second launcher, which found ``launcher.pid`` taken and
    left at once: then the launcher that file names is the one to follow.
    """
    pid, ticks = _identity(handle)
    if pid is not None and ticks is not None and procfs.is_alive(pid, ticks):
        return pid, ticks
    recorded = launcher.read_launcher_pid(run_dir)
    if recorded is None or recorded == pid or not launcher.is_launcher(recorded, run_dir):
        return None
    stat = procfs.read_stat(recorded)
    return (recorded, stat.start_ticks) if stat is not None and not stat.dead else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _started_at(run_dir: Path) -> float | None:
    try:
        launch = read_json(layout.launch_file(run_dir)) or {}
    except ValueError:
        return None  # only informative; an unreadable launch.json must not hide the state
    return _float(launch.get("started_at"))


def _finished_status(run_dir: Path, started_at: float | None) -> RunStatus | None:
    """The final state recorded by the launcher, or None while there is none."""
    try:
        doc = read_json(layout.exit_file(run_dir))
        if doc is None:
            return None
        exit_code = int(doc["exit_code"])
    except (KeyError, TypeError, ValueError) as e:
        # Read only once its marker says it is complete, or once its writer is gone: so
        # this is damage, not a race. Report it, do not retry forever.
        return RunStatus(RunState.FAILED, None, f"unreadable exit.json: {e}", started_at)
    signum = doc.get("signal")
    if exit_code == 0:
        return RunStatus(RunState.SUCCEEDED, 0, "exit code 0", started_at)
    if exit_code == EXIT_PAUSED:
        return RunStatus(RunState.PAUSED, exit_code, "paused after checkpoint", started_at)
    reason = f"killed by signal {signum}" if signum else f"exit code {exit_code}"
    return RunStatus(RunState.FAILED, exit_code, reason, started_at)


def _group_is_ours(name: str, pid: int, ticks: int) -> bool:
    """Whether signalling process group ``pid`` can only reach this run.

    The launcher leads the group. While it exists (even as a zombie) with the recorded
    start ticks, the group is ours. If it is gone but processes remain in its group, the
    kernel cannot reuse the number either, so those are the run's orphans. A different
    start time means the pid now belongs to someone else: never signal that.
    """
    stat = procfs.read_stat(pid)
    if stat is not None:
        if stat.start_ticks != ticks:
            logger.warning("run %s: pid %d was reused; not signalling it", name, pid)
            return False
        return True
    if procfs.group_members(pid):
        return True
    logger.info("run %s: process group %d already gone", name, pid)
    return False


def _ended(handles: Sequence[Handle]) -> set[str]:
    """Names of the runs whose launcher left its marker: one listing per runs root."""
    roots = {layout.root_of(run_dir) for h in handles if (run_dir := _run_dir(h)) is not None}
    ended: set[str] = set()
    for root in roots:
        try:
            ended.update(os.listdir(layout.exited_dir(root)))
        except FileNotFoundError:
            continue
    return ended


def _output(handle: Handle, offsets: Offsets, max_bytes: int, ended: bool) -> Output:
    run_dir = _run_dir(handle)
    if run_dir is None or max_bytes <= 0:
        return Output()
    # Known ended *before* reading: only then is the workload done writing for sure (runs
    # from before markers existed: exit.json itself).
    finished = ended or layout.exit_file(run_dir).exists()
    status = read_chunk(layout.status_file(run_dir), offsets.status, max_bytes)
    at_end = finished and len(status) < max_bytes
    log = read_chunk(layout.log_file(run_dir), offsets.log, max_bytes)
    return output_chunk(status, log, max_bytes, at_end)
