"""The SLURM backend: runs each job run as one batch job on a cluster reached over SSH.

Everything goes through a login node (``RemoteShell``; ``SshRunner`` in production): run
directories and the batch script are written over SFTP, jobs are started with ``sbatch``,
watched with one shell command per tick for all runs (``parse.poll_command``), and their
status file and log are read by offset in one SFTP session. Nothing is kept in memory that a
restarted worker would need: the handle carries the SLURM job id and the paths.

On the cluster, under ``base_results_dir``::

    <job_id>/results/        shared by every run of the job: checkpoints, models, summaries
    <job_id>/run-<n>/        one run: job.sh, specs.json (or .yaml), status.jsonl, output.log
"""

from __future__ import annotations

import logging
import posixpath
import shlex
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any, ClassVar, Protocol

from jobyard.backends import contract
from jobyard.backends.base import (
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
)
from jobyard.backends.contract import LOG_FILE, STATUS_FILE
from jobyard.backends.errors import (
    BackendUnavailable,
    ResultNotFound,
    SubmitRejected,
    UnsupportedOperation,
)
from jobyard.backends.output import output_chunk
from jobyard.backends.results import relative_result_path, results_root
from jobyard.backends.slurm import parse, tunnel
from jobyard.backends.slurm.sbatch import SERVING_ADDRESS_FILE, cluster_paths, render_sbatch
from jobyard.backends.slurm.ssh import SshRunner
from jobyard.schemas.settings import Settings

logger = logging.getLogger(__name__)

SCRIPT_FILE = "job.sh"
DEFAULT_BASE = "jobyard"  # under the login user's home when the workspace names no directory


class RemoteShell(Protocol):
    """What the backend needs from a login node; ``SshRunner`` over SSH, a fake in tests."""

    active_host: str | None

    def run(self, command: str, timeout: float | None = None) -> tuple[int, bytes, bytes]: ...

    def sftp_put_many(self, files: Mapping[str, bytes]) -> None: ...

    def sftp_read_many(self, requests: Sequence[tuple[str, int, int]]) -> list[bytes]: ...

    def sftp_walk(self, root: str) -> list[tuple[str, int, float]]: ...

    def sftp_remove_many(self, paths: Sequence[str]) -> int: ...

    def sftp_open(self, path: str) -> AbstractContextManager[IO[bytes]]: ...

    def close(self) -> None: ...


class SlurmBackend(Backend):
    name: ClassVar[str] = "slurm"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.GRACEFUL_STOP})
    tunnels: ClassVar[bool] = True

    def __init__(
        self,
        shell: RemoteShell,
        *,
        user: str,
        base_results_dir: str | None = None,
        python: str = "python3",
        grace_period_seconds: float = 30.0,
    ) -> None:
        self.shell = shell
        self.user = user
        self.python = python
        self.grace_period_seconds = grace_period_seconds
        self._base = base_results_dir.rstrip("/") if base_results_dir else None
        self._finished: set[str] = set()  # run names the last poll saw finished

    @classmethod
    def from_config(cls, settings: Settings, config: Mapping[str, Any]) -> SlurmBackend:
        """Built from a ``slurm`` workspace: its login nodes, user, key and known_hosts, the
        deployment's key and known_hosts files standing in for those it leaves out."""
        hosts = config.get("slurm_hostname") or []
        hosts = [hosts] if isinstance(hosts, str) else list(hosts)
        port = config.get("ssh_port")
        if port:
            hosts = [h if ":" in h else f"{h}:{port}" for h in hosts]
        shell = SshRunner(
            hosts,
            username=str(config.get("slurm_user") or ""),
            private_key=_secret_text(config, "ssh_private_key", settings.slurm_private_key_file),
            known_hosts=_secret_text(config, "known_hosts", settings.slurm_known_hosts_file),
            connect_timeout=settings.ssh_timeout_seconds,
            io_timeout=settings.ssh_timeout_seconds,
        )
        return cls(
            shell,
            user=str(config.get("slurm_user") or ""),
            base_results_dir=config.get("base_results_dir"),
            python=str(config.get("slurm_python") or settings.slurm_python),
            grace_period_seconds=settings.grace_period_seconds,
        )

    def close(self) -> None:
        self.shell.close()

    # -- paths -----------------------------------------------------------------------

    def base_dir(self) -> str:
        """``base_results_dir``, made absolute once (sbatch directives expand no ``~``)."""
        if self._base is None or not self._base.startswith("/"):
            home = self._check("pwd", "find the home directory").strip()
            self._base = posixpath.join(home, self._base or DEFAULT_BASE)
        return self._base

    def _dirs(self, job_id: str, run: int) -> tuple[str, str]:
        if not job_id or "/" in job_id or job_id in {".", ".."}:
            raise SubmitRejected(f"job id {job_id!r} cannot name a directory")
        job_dir = f"{self.base_dir()}/{job_id}"
        return f"{job_dir}/run-{run}", f"{job_dir}/results"

    # -- submit ----------------------------------------------------------------------

    def submit(self, spec: RunSpec) -> Handle:
        """Idempotent: a run already queued under this name (an earlier dispatch that died
        after sbatch) is adopted instead of submitted twice."""
        run_dir, results_dir = self._dirs(spec.job_id, spec.run)
        existing = self._check(
            f"mkdir -p {shlex.quote(run_dir)} {shlex.quote(results_dir)} && "
            + parse.squeue_command(self.user, [spec.name]),
            f"prepare {run_dir}",
        )
        found = parse.parse_squeue(existing).get(spec.name)
        if found is not None:
            logger.info("run %s already submitted as SLURM job %s", spec.name, found.job_id)
            return self._handle(spec, found.job_id, run_dir, results_dir)
        script = render_sbatch(
            spec,
            results_dir=results_dir,
            run_dir=run_dir,
            partition=spec.options.get("partition"),
            python=self.python,
            grace_seconds=self.grace_period_seconds,
        )
        paths = cluster_paths(spec, results_dir=results_dir, run_dir=run_dir)
        specs_text = contract.spec_text(spec, paths, self.python)
        self.shell.sftp_put_many(
            {
                f"{run_dir}/{contract.spec_file_name(spec)}": specs_text.encode(),
                f"{run_dir}/{SCRIPT_FILE}": script.encode(),
            }
        )
        out = self._check(f"sbatch --parsable {shlex.quote(f'{run_dir}/{SCRIPT_FILE}')}", "sbatch")
        job_id = parse.parse_sbatch_id(out)
        if job_id is None:
            raise SubmitRejected(f"run {spec.name}: sbatch printed no job id: {out.strip()!r}")
        logger.info(
            "run %s submitted as SLURM job %s via %s", spec.name, job_id, self.shell.active_host
        )
        return self._handle(spec, job_id, run_dir, results_dir)

    def _handle(self, spec: RunSpec, slurm_job_id: str, run_dir: str, results_dir: str) -> Handle:
        return Handle(
            self.name,
            spec.name,
            {
                "job_id": spec.job_id,
                "run": spec.run,
                "slurm_job_id": slurm_job_id,
                "run_dir": run_dir,
                "results_dir": results_dir,
                "login_node": self.shell.active_host,
                "partition": spec.options.get("partition"),
            },
        )

    # -- poll ------------------------------------------------------------------------

    def poll(self, handles: Sequence[Handle]) -> dict[str, RunStatus]:
        """All runs in one SSH exec, whatever their number."""
        if not handles:
            return {}
        ids = [str(h.data.get("slurm_job_id", "")) for h in handles]
        command = parse.poll_command(self.user, [h.name for h in handles], [i for i in ids if i])
        result = parse.parse_poll(self._check(command, "poll"))
        statuses = {
            h.name: _status(h, job_id, result) for h, job_id in zip(handles, ids, strict=True)
        }
        self._finished = {name for name, status in statuses.items() if status.state.finished}
        return statuses

    # -- read_output -----------------------------------------------------------------

    def read_output(
        self, requests: Sequence[tuple[Handle, Offsets]], max_bytes: int
    ) -> dict[str, Output]:
        """Status lines and log bytes of every run in one SFTP session."""
        wanted = [(h, o) for h, o in requests if h.data.get("run_dir") and max_bytes > 0]
        if not wanted:
            return {h.name: Output() for h, _ in requests}
        reads: list[tuple[str, int, int]] = []
        for handle, offsets in wanted:
            run_dir = str(handle.data["run_dir"])
            reads.append((f"{run_dir}/{STATUS_FILE}", offsets.status, max_bytes))
            reads.append((f"{run_dir}/{LOG_FILE}", offsets.log, max_bytes))
        chunks = self.shell.sftp_read_many(reads)
        outputs = {h.name: Output() for h, _ in requests}
        for index, (handle, _) in enumerate(wanted):
            status, log = chunks[2 * index], chunks[2 * index + 1]
            # Only a run the last poll saw finished has written its last status line.
            at_end = handle.name in self._finished and len(status) < max_bytes
            outputs[handle.name] = output_chunk(status, log, max_bytes, at_end)
        return outputs

    # -- stop / cleanup --------------------------------------------------------------

    def stop(self, handle: Handle, graceful: bool) -> None:
        """Graceful: SIGTERM to the batch script, so the workload checkpoints and exits;
        kill: SIGKILL. A job still pending is cancelled (``parse.scancel_command``)."""
        job_id = str(handle.data.get("slurm_job_id") or "")
        if not job_id:
            return
        status, _, err = self.shell.run(parse.scancel_command(job_id, graceful))
        message = err.decode(errors="replace").strip()
        if status != 0 and parse.is_transient_error(message):
            raise BackendUnavailable(f"scancel of SLURM job {job_id}: {message}")
        if status != 0:
            logger.info("run %s: scancel %s: %s (already finished?)", handle.name, job_id, message)

    def cleanup(self, handle: Handle) -> None:
        """Nothing to release: SLURM frees the allocation itself, and the run's files stay
        on the cluster as the job's record."""

    # -- model servers ---------------------------------------------------------------

    def serving_endpoint(self, spec: RunSpec) -> Endpoint:
        """Port 0: the batch script picks a free port on the node it lands on and writes
        it down with the node's name, since neither is known before SLURM schedules it."""
        return Endpoint("0.0.0.0", 0, "")

    def serving_addresses(self, handles: Sequence[Handle]) -> dict[str, str]:
        """Every placed server's node address and port in one SSH exec."""
        files = {
            h.name: f"{h.data['run_dir']}/{SERVING_ADDRESS_FILE}"
            for h in handles
            if h.data.get("run_dir")
        }
        if not files:
            return {}
        found = parse.parse_addresses(self._check(parse.addresses_command(files), "find servers"))
        return {
            name: f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
            for name, (host, port) in found.items()
        }

    def reach(self, url: str) -> str:
        if not isinstance(self.shell, SshRunner):
            raise UnsupportedOperation("model servers are reached through an SSH login node")
        return tunnel.local_url(self.shell, url)

    # -- accelerators ----------------------------------------------------------------

    def accelerators(self) -> list[Accelerator]:
        """One ``sinfo`` on the login node: each partition's GPUs per node, from its gres."""
        return parse.parse_sinfo(self._check(parse.SINFO_COMMAND, "sinfo"))

    # -- results ---------------------------------------------------------------------

    def delete_results(self, files: Sequence[tuple[Handle, str]]) -> int:
        """One SFTP session for all of them."""
        paths = [f"{results_root(h)}/{relative_result_path(p)}" for h, p in files]
        return self.shell.sftp_remove_many(paths) if paths else 0

    def list_results(self, handle: Handle) -> list[ResultFile]:
        root = results_root(handle)
        return [ResultFile(path, size, mtime) for path, size, mtime in self.shell.sftp_walk(root)]

    def open_result(self, handle: Handle, path: str) -> AbstractContextManager[IO[bytes]]:
        target = f"{results_root(handle)}/{relative_result_path(path)}"
        return _OpenedResult(self.shell, target, path, handle.name)

    # -- helpers ---------------------------------------------------------------------

    def _check(self, command: str, what: str) -> str:
        status, out, err = self.shell.run(command)
        if status == 0:
            return out.decode(errors="replace")
        message = err.decode(errors="replace").strip() or out.decode(errors="replace").strip()
        where = self.shell.active_host or "the login node"
        if parse.is_transient_error(message):
            raise BackendUnavailable(f"{what} on {where}: {message}")
        raise SubmitRejected(f"{what} on {where} failed (exit {status}): {message}")


def _status(handle: Handle, job_id: str, result: parse.PollResult) -> RunStatus:
    fields = result.control.get(job_id)
    if fields is not None:
        return parse.run_state(
            fields.get("JobState", ""), fields.get("ExitCode"), fields.get("Reason", "")
        )
    entry = result.queue.get(handle.name)
    if entry is not None and entry.job_id == job_id:
        return parse.run_state(entry.state, None, entry.reason)
    if job_id in result.accounting:
        slurm_state, exit_code = result.accounting[job_id]
        return parse.run_state(slurm_state, exit_code)
    return RunStatus(
        RunState.LOST,
        reason=f"SLURM no longer knows job {job_id or '?'} (finished longer ago than MinJobAge "
        "and no accounting to ask)",
    )


class _OpenedResult(AbstractContextManager[IO[bytes]]):
    """Opens on enter, so a missing file is ``ResultNotFound`` where the caller expects it."""

    def __init__(self, shell: RemoteShell, target: str, path: str, name: str) -> None:
        self._inner = shell.sftp_open(target)
        self._path, self._name = path, name

    def __enter__(self) -> IO[bytes]:
        try:
            return self._inner.__enter__()
        except FileNotFoundError as e:
            raise ResultNotFound(f"{self._path!r} is not a result file of {self._name}") from e

    def __exit__(self, *exc: Any) -> None:
        self._inner.__exit__(*exc)


def _secret_text(config: Mapping[str, Any], key: str, fallback: Path | None) -> str:
    value = config.get(key)
    if value:
        return str(value)
    if fallback is None:
        raise SubmitRejected(
            f"the slurm workspace has no {key} and JOBYARD_SLURM_"
            f"{'PRIVATE_KEY' if key == 'ssh_private_key' else 'KNOWN_HOSTS'}_FILE is not set"
        )
    try:
        return fallback.read_text()
    except OSError as e:
        raise SubmitRejected(f"cannot read {fallback}: {e}") from e
