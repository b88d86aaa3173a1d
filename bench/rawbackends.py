"""The pools phase's baselines: each backend's own client making the raw calls alone, with
no jobyard code in the timed path, against the same double or cluster jobyard uses.

``submit`` starts one run the way jobyard's does (the same command, the same body read
back from one of jobyard's runs); ``poll`` is the one status listing a poller of these
runs cannot do without; ``remove`` ends every run ``submit`` started, so that none is
left for jobyard's reconcile to see.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import paramiko
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from jobyard.backends.base import Handle
from jobyard.backends.kubernetes.manifest import INSTANCE, MANAGED_BY
from jobyard.backends.lepton.render import LABEL_MANAGED
from jobyard.backends.lepton.render import MANAGED_BY as LEPTON_MANAGED_BY
from tests.slurm.cluster import SlurmCluster

RAW_INSTANCE = "bench-raw"  # a label value jobyard's selector never matches


class Raw(Protocol):
    submit_name: str
    poll_name: str

    def learn(self, handle: Handle) -> None:
        """Take what ``submit`` needs from one of jobyard's runs (its body)."""

    def submit(self, index: int) -> None: ...

    def poll(self, handles: Sequence[Handle]) -> int:
        """Runs seen by one raw status listing."""
        ...

    def remove(self) -> None: ...

    def close(self) -> None: ...


class RawProcess:
    submit_name = "raw subprocess.Popen(sleep 600)"
    poll_name = "raw /proc/<pid>/stat read per run"

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def learn(self, handle: Handle) -> None:
        """Nothing to learn: the command is the bench experiment's."""

    def submit(self, index: int) -> None:
        devnull = subprocess.DEVNULL
        self.procs.append(
            subprocess.Popen(
                ["sleep", "600"],
                stdin=devnull,
                stdout=devnull,
                stderr=devnull,
                start_new_session=True,
            )
        )

    def poll(self, handles: Sequence[Handle]) -> int:
        seen = 0
        for handle in handles:
            with contextlib.suppress(OSError):
                Path(f"/proc/{handle.data['pid']}/stat").read_bytes()
                seen += 1
        return seen

    def remove(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self.procs.clear()

    def close(self) -> None:
        self.remove()


class RawKubernetes:
    """The official client, the one jobyard uses, with its response models skipped
    (``_preload_content=False``) as jobyard skips them: the calls, not the decoding."""

    submit_name = "raw create_namespaced_job (official client)"
    poll_name = "raw list_namespaced_job + list_namespaced_pod"

    def __init__(self, kubeconfig: Path) -> None:
        self.api = k8s_config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        _, active = k8s_config.list_kube_config_contexts(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        self.namespace = str(active["context"].get("namespace") or "default")
        self.batch = k8s.BatchV1Api(self.api)
        self.core = k8s.CoreV1Api(self.api)
        self.body: dict[str, Any] = {}
        self.selector = ""
        self.names: list[str] = []

    def learn(self, handle: Handle) -> None:
        raw = self.batch.read_namespaced_job(handle.name, self.namespace, _preload_content=False)
        job = json.loads(_read(raw))
        labels = dict(job["metadata"]["labels"])
        self.selector = f"{MANAGED_BY}={labels[MANAGED_BY]},{INSTANCE}={labels[INSTANCE]}"
        labels[INSTANCE] = RAW_INSTANCE
        spec = job["spec"]
        spec["template"]["metadata"]["labels"] = dict(labels)
        metadata = {"labels": labels, "annotations": job["metadata"].get("annotations", {})}
        self.body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}

    def submit(self, index: int) -> None:
        name = f"raw-{index}-{uuid.uuid4().hex[:8]}"
        body = {**self.body, "metadata": {**self.body["metadata"], "name": name}}
        # a dict body: the client serializes it as it is, as jobyard's V1Job would be
        created = self.batch.create_namespaced_job(
            self.namespace,
            body,  # type: ignore[arg-type]
            _preload_content=False,
        )
        _read(created)
        self.names.append(name)

    def poll(self, handles: Sequence[Handle]) -> int:
        jobs = self.batch.list_namespaced_job(
            self.namespace, label_selector=self.selector, _preload_content=False
        )
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=self.selector, _preload_content=False
        )
        json.loads(_read(pods))
        return len(json.loads(_read(jobs))["items"])

    def remove(self) -> None:
        for name in self.names:
            deleted = self.batch.delete_namespaced_job(
                name, self.namespace, propagation_policy="Background", _preload_content=False
            )
            _read(deleted)
        self.names.clear()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.remove()
        self.api.close()


def _read(response: Any) -> bytes:
    """The whole body of a ``_preload_content=False`` answer (its connection goes back to
    the pool once read)."""
    return bytes(response.data)


class RawSlurm:
    """``sbatch --wrap`` of the same command over one paramiko connection."""

    submit_name = "raw sbatch --wrap (one paramiko SSH connection)"
    poll_name = "raw squeue -u (same connection)"

    def __init__(self, cluster: SlurmCluster) -> None:
        self.cluster = cluster
        self.ssh = paramiko.SSHClient()
        self.ssh.load_host_keys(str(cluster.known_hosts))
        self.ssh.set_missing_host_key_policy(paramiko.RejectPolicy())
        key = paramiko.Ed25519Key.from_private_key_file(str(cluster.private_key))
        self.ssh.connect(
            cluster.host,
            cluster.port,
            username=cluster.user,
            pkey=key,
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
        self.ids: list[str] = []

    def _exec(self, command: str) -> str:
        _, stdout, stderr = self.ssh.exec_command(command, timeout=30)
        out = stdout.read()
        if stdout.channel.recv_exit_status() != 0:
            raise RuntimeError(f"{command}: {stderr.read().decode(errors='replace')}")
        return out.decode()

    def learn(self, handle: Handle) -> None:
        """Nothing to learn: ``--wrap`` carries the command."""

    def submit(self, index: int) -> None:
        out = self._exec(
            f"sbatch --parsable --job-name=bench-raw-{index} --partition={self.cluster.partition}"
            " --output=/dev/null --chdir=/tmp --wrap='sleep 600'"
        )
        self.ids.append(out.strip().split(";")[0])

    def poll(self, handles: Sequence[Handle]) -> int:
        out = self._exec(f"squeue -h -u {self.cluster.user} -o '%i|%j|%T|%r'")
        return len(out.splitlines())

    def remove(self) -> None:
        if self.ids:
            self._exec("scancel " + " ".join(self.ids))
        self.ids.clear()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.remove()
        self.ssh.close()


class RawLepton:
    """``POST /jobs`` of the body jobyard sent, on one keep-alive connection."""

    submit_name = "raw HTTP POST /jobs (one keep-alive connection)"
    poll_name = "raw HTTP GET /jobs (one page)"

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        self.base = parts.path
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.template: dict[str, Any] = {}
        self.ids: list[str] = []

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body)
        self.conn.request(method, self.base + path, body=data, headers=self.headers)
        response = self.conn.getresponse()
        raw = response.read()
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status} {raw[:200]!r}")
        return json.loads(raw) if raw else None

    def learn(self, handle: Handle) -> None:
        job = self._call("GET", f"/jobs/{handle.data['lepton_job']}")
        self.template = {"labels": job["metadata"].get("labels") or {}, "spec": job["spec"]}

    def submit(self, index: int) -> None:
        job_id = f"raw-{index}-{uuid.uuid4().hex[:8]}"
        metadata = {"id": job_id, "name": job_id, "labels": self.template["labels"]}
        self._call("POST", "/jobs", {"metadata": metadata, "spec": self.template["spec"]})
        self.ids.append(job_id)

    def poll(self, handles: Sequence[Handle]) -> int:
        query = {
            "job_query_mode": "alive_only",
            "page_size": 500,
            "page": 1,
            "query": f"{LABEL_MANAGED}={LEPTON_MANAGED_BY}",
        }
        return len(self._call("GET", f"/jobs?{urlencode(query)}")["jobs"])

    def remove(self) -> None:
        for job_id in self.ids:
            self._call("DELETE", f"/jobs/{job_id}")
        self.ids.clear()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.remove()
        self.conn.close()
