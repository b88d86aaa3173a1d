"""The Kubernetes backend: each run is one batch/v1 Job, found again by its name.

Cost grows with clusters, not jobs: ``poll`` makes one label-selected list of Jobs and
one of Pods for every run of this deployment, whatever their number. ``read_output``
reuses the pods that poll saw (the engine calls it right after) and then reads, for each
run, its status file from the shared results volume and its log from the API server.

Nothing needed for correctness lives in memory: the pod names kept from the last poll
only save a list call, and a worker that never polled lists the pods itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar

from kubernetes.client.exceptions import ApiException

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
    RunStatus,
    free_port,
)
from jobyard.backends.errors import BackendUnavailable, SubmitRejected
from jobyard.backends.kubernetes import client, config, manifest, nodes, parse
from jobyard.backends.kubernetes.client import Api
from jobyard.backends.kubernetes.config import KubeConfig
from jobyard.backends.output import output_chunk, read_chunk
from jobyard.backends.process import layout
from jobyard.backends.process.files import write_run_files
from jobyard.backends.results import delete_local, list_local, open_local, results_root
from jobyard.schemas.job import SERVE_ACTION
from jobyard.schemas.settings import Settings

logger = logging.getLogger(__name__)
SERVER = "server"  # a handle's kind: a model server's Deployment and Service


@dataclass(frozen=True)
class _Seen:
    """What the last poll saw of one run's pod."""

    pod: str | None
    started: bool  # the container ran, so it has a log to read
    finished: bool  # the run ended: its status file is complete


class KubernetesBackend(Backend):
    name: ClassVar[str] = "kubernetes"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.GRACEFUL_STOP})

    def __init__(self, api: Api, kube: KubeConfig, results_root: Path) -> None:
        self.api = api
        self.kube = kube
        self.root = Path(results_root)  # the results volume, as this worker sees it
        self._seen: dict[str, _Seen] = {}

    @classmethod
    def from_config(
        cls, settings: Settings, workspace: Mapping[str, Any] | None = None
    ) -> KubernetesBackend:
        api_client, namespace = client.connect(
            settings.kubernetes_kubeconfig,
            settings.kubernetes_context,
            settings.kubernetes_namespace,
        )
        kube = config.from_settings(settings, namespace)
        root = settings.kubernetes_results_dir or Path(kube.results_mount)
        api = Api(api_client, namespace, settings.kubernetes_request_timeout_seconds)
        return cls(api, kube, root)

    def close(self) -> None:
        self.api.close()

    # -- submit ----------------------------------------------------------------------

    def submit(self, spec: RunSpec) -> Handle:
        if spec.action == SERVE_ACTION:
            return self._submit_server(spec)
        body = manifest.render_job_manifest(spec, self.kube)
        run_dir, results_dir = self._write_specs(spec)
        self._create(spec, body)
        return self._handle(spec, run_dir, results_dir)

    def _handle(self, spec: RunSpec, run_dir: Path, results_dir: Path, **extra: Any) -> Handle:
        return Handle(
            self.name,
            spec.name,
            {
                "job_id": spec.job_id,
                "run": spec.run,
                "namespace": self.api.namespace,
                "run_dir": str(run_dir),
                "results_dir": str(results_dir),
                "pod_results_dir": manifest.pod_results_dir(self.kube, spec.job_id),
                **extra,
            },
        )

    # -- model servers ---------------------------------------------------------------

    def serving_endpoint(self, spec: RunSpec) -> Endpoint:
        """A port picked here (any port is free inside a pod; the test double runs pods
        on one machine); the address is the Service's, known once it exists."""
        return Endpoint("0.0.0.0", free_port(), "")  # noqa: S104  (the pod's own network)

    def _submit_server(self, spec: RunSpec) -> Handle:
        port = int(spec.env.get("JY_SERVE_PORT") or 0)
        if not port:
            raise SubmitRejected(f"run {spec.name}: a model server needs JY_SERVE_PORT")
        deployment, service = manifest.render_server_manifests(spec, self.kube, port)
        run_dir, results_dir = self._write_specs(spec)
        with client.wrapped(f"create Deployment and Service {spec.name}"):
            for create, read, body in (
                (self.api.create_deployment, self.api.read_deployment, deployment),
                (self.api.create_service, self.api.read_service, service),
            ):
                try:
                    create(body)
                except ApiException as e:
                    if e.status != 409:
                        raise
                    self._check_ours(read(spec.name), spec)
            found = self.api.read_service(spec.name)
        address = (found.get("spec") or {}).get("clusterIP")
        if not address or address == "None":
            raise BackendUnavailable(f"Service {spec.name} has no cluster IP yet")
        logger.info("job %s: model server %s behind %s:%d", spec.job_id, spec.name, address, port)
        return self._handle(
            spec, run_dir, results_dir, kind=SERVER, serving_url=f"http://{address}:{port}"
        )

    def run_results_dir(self, handle: Handle) -> str:
        return str(handle.data.get("pod_results_dir") or self.results_location(handle))

    def _write_specs(self, spec: RunSpec) -> tuple[Path, Path]:
        """Put the spec file (and a tao workload's status link) on the results volume,
        where the pod reads it."""
        run_dir, results_dir = self._dirs(spec.job_id, spec.run)
        if not self.root.is_dir():
            # Never create the root: a worker without the volume would write specs the
            # pods cannot see, and every run would fail for a reason far from the cause.
            raise SubmitRejected(
                f"the results volume is not mounted at {self.root} on this worker "
                "(JOBYARD_KUBERNETES_RESULTS_DIR)"
            )
        try:
            results_dir.mkdir(parents=True, exist_ok=True)
            run_dir.mkdir(parents=True, exist_ok=True)
            paths = manifest.pod_paths(spec, self.kube)
            write_run_files(spec, paths, manifest.PYTHON, run_dir, results_dir)
        except OSError as e:
            raise BackendUnavailable(
                f"run {spec.name}: cannot write to the results volume: {e}"
            ) from e
        return run_dir, results_dir

    def _create(self, spec: RunSpec, body: dict[str, Any]) -> None:
        """Create the Job; one that exists already (a retried submit) is ours if it was
        made for the same job."""
        with client.wrapped(f"create Job {spec.name}"):
            try:
                self.api.create_job(body)
                logger.info("job %s: created Kubernetes Job %s", spec.job_id, spec.name)
            except ApiException as e:
                if e.status != 409:
                    raise
                self._check_ours(self.api.read_job(spec.name), spec)
                logger.info("job %s: Kubernetes Job %s already exists", spec.job_id, spec.name)

    def _dirs(self, job_id: str, run: int) -> tuple[Path, Path]:
        try:
            return layout.run_dir(self.root, job_id, run), layout.results_dir(self.root, job_id)
        except ValueError as e:
            raise SubmitRejected(f"job {job_id}: {e}") from e

    @staticmethod
    def _check_ours(existing: Mapping[str, Any], spec: RunSpec) -> None:
        """A Job by our name that another job made is a conflict, not our run."""
        annotations = (existing.get("metadata") or {}).get("annotations") or {}
        if annotations.get(manifest.JOB_ID) != spec.job_id:
            raise SubmitRejected(
                f"a Kubernetes Job named {spec.name} exists but was not made for job {spec.job_id}"
            )

    # -- poll ------------------------------------------------------------------------

    def poll(self, handles: Sequence[Handle]) -> dict[str, RunStatus]:
        """One list of Jobs and one of Pods for any number of runs. A single run (the look
        right after its submit) lists only its own objects: a dispatch costs the same at
        10 running pods as at 10,000."""
        if not handles:
            return {}
        selector = manifest.selector(self.kube)
        single = len(handles) == 1
        if single:
            selector = manifest.run_selector(self.kube, handles[0].name)
        servers = any(h.data.get("kind") == SERVER for h in handles)
        batch = any(h.data.get("kind") != SERVER for h in handles)
        with client.wrapped("list Jobs and Pods"):
            jobs = parse.by_run(self.api.list_jobs(selector)) if batch else {}
            deployments = parse.by_run(self.api.list_deployments(selector)) if servers else {}
            pods = parse.by_run(self.api.list_pods(selector))
        statuses = {}
        for handle in handles:
            of_run = pods.get(handle.name, [])
            if handle.data.get("kind") == SERVER:
                found = deployments.get(handle.name)
                statuses[handle.name] = parse.server_status(
                    found[-1] if found else None, of_run, handle.name
                )
                continue
            found = jobs.get(handle.name)
            statuses[handle.name] = parse.run_status(
                found[-1] if found else None, of_run, handle.name
            )
        self._remember(pods, statuses, everything=not single)
        return statuses

    def _remember(
        self,
        pods: Mapping[str, Sequence[parse.Obj]],
        statuses: Mapping[str, RunStatus],
        everything: bool = True,
    ) -> None:
        """What ``read_output`` needs of the runs just polled: all of them replace what was
        seen; one run's look only updates its own entry."""
        seen = {}
        for name, items in pods.items():
            pod = items[-1]
            status = statuses.get(name)
            seen[name] = _Seen(
                pod=str(pod["metadata"]["name"]),
                started=parse.started_at(pod) is not None,
                finished=status is not None and status.state.finished,
            )
        for name, status in statuses.items():
            seen.setdefault(name, _Seen(None, False, status.state.finished))
        self._seen = seen if everything else {**self._seen, **seen}

    # -- read_output -----------------------------------------------------------------

    def read_output(
        self, requests: Sequence[tuple[Handle, Offsets]], max_bytes: int
    ) -> dict[str, Output]:
        if not requests or max_bytes <= 0:
            return {}
        if any(handle.name not in self._seen for handle, _ in requests):
            self.poll([handle for handle, _ in requests])  # one list, not one per run
        return {handle.name: self._output(handle, where, max_bytes) for handle, where in requests}

    def _output(self, handle: Handle, offsets: Offsets, max_bytes: int) -> Output:
        seen = self._seen.get(handle.name, _Seen(None, False, False))
        run_dir = handle.data.get("run_dir")
        status = b""
        if run_dir:
            try:
                status = read_chunk(layout.status_file(Path(run_dir)), offsets.status, max_bytes)
            except OSError as e:
                raise BackendUnavailable(f"cannot read the status of {handle.name}: {e}") from e
        at_end = seen.finished and len(status) < max_bytes
        log = b""
        if seen.pod and seen.started:
            log = self._log(seen.pod, offsets.log, max_bytes)
        return output_chunk(status, log, max_bytes, at_end)

    def _log(self, pod: str, offset: int, max_bytes: int) -> bytes:
        with client.wrapped(f"read the log of pod {pod}"):
            try:
                data = self.api.pod_log(pod, max(offset, 0) + max_bytes)
            except ApiException as e:
                if e.status in (400, 404):  # not started yet, or deleted with its log
                    return b""
                raise
        return data[max(offset, 0) :]

    # -- stop / cleanup --------------------------------------------------------------

    def _run_selector(self, handle: Handle) -> str:
        return f"{manifest.selector(self.kube)},{manifest.RUN_NAME}={handle.name}"

    def stop(self, handle: Handle, graceful: bool) -> None:
        """Graceful: delete the pod with the grace period, so the workload gets SIGTERM,
        checkpoints and exits 75 while the Job stays to tell so. Abrupt: kill the pod
        now and delete the Job."""
        grace = self.kube.grace_seconds if graceful else 0
        with client.wrapped(f"stop {handle.name}"):
            if handle.data.get("kind") == SERVER:
                self._delete_server(handle.name, grace)  # its pods would be replaced
            self.api.delete_pods(self._run_selector(handle), grace)
            if not graceful:
                self._delete_job(handle.name)
        logger.info("run %s: pods deleted with a %d s grace period", handle.name, grace)

    def cleanup(self, handle: Handle) -> None:
        """Delete the Job and its pods; results and status stay on the volume."""
        with client.wrapped(f"clean up {handle.name}"):
            if handle.data.get("kind") == SERVER:
                self._delete_server(handle.name, None)
                return
            self._delete_job(handle.name)

    def _delete_server(self, name: str, grace: int | None) -> None:
        """The Deployment (its pods go with their grace period) and the Service."""
        try:
            self.api.delete_deployment(name, grace)
        except ApiException as e:
            if e.status != 404:
                raise
        try:
            self.api.delete_service(name)
        except ApiException as e:
            if e.status != 404:
                raise

    def _delete_job(self, name: str) -> None:
        try:
            self.api.delete_job(name)
        except ApiException as e:
            if e.status != 404:
                raise

    # -- accelerators ----------------------------------------------------------------

    def accelerators(self) -> list[Accelerator]:
        """One list of the nodes this deployment's pods may land on: those that match
        ``JOBYARD_KUBERNETES_NODE_SELECTOR``."""
        selector = ",".join(f"{k}={v}" for k, v in sorted(self.kube.node_selector.items()))
        with client.wrapped("list nodes"):
            found = self.api.list_nodes(selector)
        return nodes.node_accelerators(found, self.kube.gpu_resource)

    # -- results ---------------------------------------------------------------------

    def list_results(self, handle: Handle) -> list[ResultFile]:
        return list_local(Path(results_root(handle)), handle.name)

    def delete_results(self, files: Sequence[tuple[Handle, str]]) -> int:
        return delete_local(files)

    def open_result(self, handle: Handle, path: str) -> AbstractContextManager[IO[bytes]]:
        return open_local(Path(results_root(handle)), path, handle.name)
