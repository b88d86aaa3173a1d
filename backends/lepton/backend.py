"""The Lepton backend: one Lepton batch job per run, watched with one list call per tick.

State lives on Lepton and in the handle (the Lepton job id); the few things kept in memory
(each run's replica id and last seen state) only save calls and are rebuilt from the API
whenever missing, so any worker can manage any run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import IO, Any, ClassVar

from jobyard.backends.base import (
    Accelerator,
    Backend,
    Capability,
    Handle,
    Offsets,
    Output,
    ResultFile,
    RunSpec,
    RunStatus,
)
from jobyard.backends.errors import BackendError, UnsupportedOperation
from jobyard.backends.lepton import shapes, state, stream
from jobyard.backends.lepton.client import LeptonClient
from jobyard.backends.lepton.config import LeptonConfig
from jobyard.backends.lepton.render import LABEL_MANAGED, MANAGED_BY, render_job_body, run_paths
from jobyard.backends.output import output_chunk
from jobyard.schemas.settings import Settings

logger = logging.getLogger(__name__)

MAX_LOG_READ_BYTES = 64 * 1024 * 1024  # a replica log is read from its start every time
LOG_READERS = 16  # concurrent replica-log reads per reconcile
GONE = "Gone"  # not a Lepton state: the job is in no list and answers 404
NO_RESULTS = (
    "Lepton runs keep their results on the workspace's storage_backend; "
    "jobyard cannot list or read them from the Lepton job API"
)


class LeptonBackend(Backend):
    name: ClassVar[str] = "lepton"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.GRACEFUL_STOP})

    def __init__(self, client: LeptonClient, config: LeptonConfig) -> None:
        self.client = client
        self.config = config
        self._replica: dict[str, str] = {}  # lepton job id -> replica id
        self._seen: dict[str, str] = {}  # lepton job id -> state at the last poll
        # logs of ended runs read by poll for their exit code, for read_output to reuse
        self._final_logs: dict[str, bytes | None] = {}

    @classmethod
    def from_config(cls, settings: Settings, config: Mapping[str, Any]) -> LeptonBackend:
        parsed = LeptonConfig.from_workspace(config)
        client = LeptonClient(parsed.api_url, parsed.token, parsed.workspace_id)
        return cls(client, parsed)

    # -- submit ----------------------------------------------------------------------

    def submit(self, spec: RunSpec) -> Handle:
        body = render_job_body(spec, self.config)
        job_id = body["metadata"]["id"]
        job, created = self.client.create_job(body)
        if created:
            logger.info("run %s submitted as Lepton job %s", spec.name, job_id)
        else:
            logger.info("run %s: Lepton job %s exists already", spec.name, job_id)
        self._seen[job_id] = state.job_state(job)
        return Handle(
            self.name,
            spec.name,
            {
                "job_id": spec.job_id,
                "run": spec.run,
                "lepton_job": job_id,
                "workspace": self.config.workspace_id,
                "results_dir": run_paths(self.config, spec.job_id, spec.run).results_dir,
            },
        )

    # -- poll ------------------------------------------------------------------------

    def poll(self, handles: Sequence[Handle]) -> dict[str, RunStatus]:
        """One paginated list call for every run (one GET for a lone run). Extra calls
        only at the edges: a run missing from the list is confirmed with one GET (a list
        may lag a create), and a run that ended Stopped or Failed has its exit code read
        from its log, which ``read_output`` then reuses."""
        if not handles:
            return {}
        jobs = self._jobs([_lepton_job(h) for h in handles])
        found: dict[str, RunStatus] = {}
        for handle in handles:
            job_id = _lepton_job(handle)
            job = jobs.get(job_id)
            if job is None and len(handles) > 1:
                job = self.client.get_job(job_id)
            self._seen[job_id] = state.job_state(job) if job is not None else GONE
            exit_code = None
            if job is not None and state.needs_exit_code(job):
                raw = self._final_logs[job_id] = self._log(job_id)
                exit_code = stream.exit_code(raw) if raw is not None else None
            found[handle.name] = state.run_status(job, exit_code)
        if len(handles) > 1:
            self._forget_all_but({_lepton_job(h) for h in handles})
        return found

    def _forget_all_but(self, job_ids: set[str]) -> None:
        """A many-run poll is reconcile's, over every watched run of this workspace: what
        is remembered about any other run is stale, and would otherwise pile up."""
        for memo in (self._seen, self._replica, self._final_logs):
            for job_id in [j for j in memo if j not in job_ids]:
                memo.pop(job_id, None)

    def _jobs(self, job_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Lepton jobs by id: one GET for a single run (the look right after a submit,
        which would otherwise list the whole workspace once per job), else one list."""
        if len(job_ids) == 1:
            job = self.client.get_job(job_ids[0])
            return {} if job is None else {job_ids[0]: job}
        return {
            str(job.get("metadata", {}).get("id")): job
            for job in self.client.list_jobs(query=f"{LABEL_MANAGED}={MANAGED_BY}")
        }

    # -- read_output -----------------------------------------------------------------

    def read_output(
        self, requests: Sequence[tuple[Handle, Offsets]], max_bytes: int
    ) -> dict[str, Output]:
        """Each started run's replica log, read concurrently: Lepton's log endpoint may
        follow a running replica until a read goes idle, and those waits should overlap."""
        if not requests:
            return {}
        workers = min(LOG_READERS, len(requests))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lepton-log") as pool:
            outputs = pool.map(lambda r: self._output(r[0], r[1], max_bytes), requests)
            return {handle.name: out for (handle, _), out in zip(requests, outputs, strict=True)}

    def _output(self, handle: Handle, offsets: Offsets, max_bytes: int) -> Output:
        job_id = _lepton_job(handle)
        seen = self._seen.get(job_id)
        if max_bytes <= 0 or seen in state.NOT_STARTED or seen == GONE:
            return Output()  # nothing written yet, or nothing left to read
        complete = seen in state.WITH_EXIT_CODE or seen == "Completed"
        raw = self._final_logs.pop(job_id) if job_id in self._final_logs else self._log(job_id)
        if raw is None:
            return Output()
        status, log = stream.split_log(raw, complete)
        chunk = status[offsets.status : offsets.status + max_bytes]
        at_end = complete and offsets.status + len(chunk) >= len(status)
        return output_chunk(chunk, log[offsets.log : offsets.log + max_bytes], max_bytes, at_end)

    def _log(self, job_id: str) -> bytes | None:
        """The first replica's whole log; None while it has no replica (or is gone)."""
        replica = self._replica.get(job_id)
        if replica is None:
            replicas = sorted(
                str((r.get("metadata") or {}).get("id") or r.get("id"))
                for r in self.client.replicas(job_id)
            )
            if not replicas:
                return None
            replica = self._replica[job_id] = replicas[0]
        raw = self.client.replica_log(job_id, replica, MAX_LOG_READ_BYTES)
        if raw is None:
            self._replica.pop(job_id, None)
        return raw

    # -- stop / cleanup --------------------------------------------------------------

    def stop(self, handle: Handle, graceful: bool) -> None:
        """Graceful: Lepton's stop, which sends SIGTERM so the workload checkpoints and
        exits 75. Abrupt: delete the job, replicas and all."""
        job_id = _lepton_job(handle)
        if graceful:
            present = self.client.stop_job(job_id)
        else:
            present = self.client.delete_job(job_id)
        how = "stop" if graceful else "delete"
        if present:
            logger.info("run %s: Lepton %s sent for job %s", handle.name, how, job_id)
        else:
            logger.info("run %s: Lepton job %s already gone", handle.name, job_id)

    def cleanup(self, handle: Handle) -> None:
        """Delete the Lepton job once jobyard has stored all it wrote; results stay on
        the workspace's storage."""
        job_id = _lepton_job(handle)
        self.client.delete_job(job_id)
        self._replica.pop(job_id, None)
        self._seen.pop(job_id, None)
        self._final_logs.pop(job_id, None)

    # -- accelerators ----------------------------------------------------------------

    def accelerators(self) -> list[Accelerator]:
        """The node groups, then each one's job shapes: only the workspace's
        ``lepton_node_group`` when it names one."""
        groups = self.client.node_groups()
        if self.config.node_group:
            groups = [g for g in groups if self.config.node_group in shapes.group_names(g)]
        found: list[Accelerator] = []
        for group in groups:
            offered = self.client.shapes(shapes.group_id(group), shapes.PURPOSE)
            found.extend(shapes.group_accelerators(group, offered))
        return found

    # -- results ---------------------------------------------------------------------

    def list_results(self, handle: Handle) -> list[ResultFile]:
        raise UnsupportedOperation(NO_RESULTS)

    def open_result(self, handle: Handle, path: str) -> AbstractContextManager[IO[bytes]]:
        raise UnsupportedOperation(NO_RESULTS)


def _lepton_job(handle: Handle) -> str:
    value = handle.data.get("lepton_job")
    if not value:
        raise BackendError(f"run {handle.name} has no Lepton job id in its handle")
    return str(value)
