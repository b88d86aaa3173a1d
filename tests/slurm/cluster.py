"""A real single-node SLURM cluster behind a real sshd, started once per test session.

A pytest plugin (``tests/conftest.py`` loads it) rather than a conftest, so that the
SLURM tests and the backend contract suite (tests/contract) share one cluster per session.

``scripts/slurm`` is copied into a fresh base directory under the system temp dir (not
pytest's ``tmp_path``: that is mode 0700 and the cluster's login user must traverse it),
started on free loopback ports, and stopped at teardown by pid file; teardown then checks
that no process mentioning the base directory is left. Needs root, like the scripts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from jobyard.backends.slurm.ssh import SshRunner

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts" / "slurm"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0


@dataclass(frozen=True)
class SlurmCluster:
    host: str
    port: int
    user: str
    private_key: Path
    known_hosts: Path
    slurm_conf: Path
    base: Path
    work: Path  # writable by ``user``: runs put their directories here
    partition: str
    start_seconds: float
    python: Path  # runs the reference workload on the node, as the cluster's user

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def runner(self, hosts: list[str] | None = None, known_hosts: str | None = None) -> SshRunner:
        from jobyard.backends.slurm.ssh import SshRunner  # the slurm extra, only when used

        return SshRunner(
            hosts or [self.address],
            username=self.user,
            private_key=self.private_key.read_text(),
            known_hosts=self.known_hosts.read_text() if known_hosts is None else known_hosts,
            connect_timeout=5.0,
            io_timeout=30.0,
        )


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports; all held open together so none is handed out twice."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _node_python(base: Path) -> Path:
    """An interpreter the cluster's user can run, with the reference workload importable.

    The node is this machine but the job runs as the cluster's login user, who cannot read
    the test runner's virtualenv (it lives under /root): Debian's python3 with python3-numpy
    and a copy of ``workloads/`` stand in for the environment a real cluster would provide.
    """
    packages = base / "pkg"
    shutil.copytree(
        REPO / "workloads",
        packages / "jobyard" / "workloads",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (packages / "jobyard" / "__init__.py").write_text("")
    wrapper = base / "bin" / "python"
    wrapper.parent.mkdir(mode=0o755)
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={packages} exec /usr/bin/python3 "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def _leftovers(base: Path) -> list[str]:
    found = subprocess.run(
        ["pgrep", "-a", "-f", str(base)], capture_output=True, text=True, check=False
    )
    return [line for line in found.stdout.splitlines() if line.strip()]


def _stop(base: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(base / "stop.sh"), str(base)],
        capture_output=True,
        text=True,
        timeout=STOP_TIMEOUT,
        check=False,
    )


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    if shutil.which("slurmctld") is None:
        pytest.skip("SLURM is not installed (apt-get install slurm-wlm slurm-client munge ...)")
    with started_cluster() as cluster:
        yield cluster


@contextlib.contextmanager
def started_cluster() -> Iterator[SlurmCluster]:
    """A fresh cluster for the ``with`` block (the fixture's, and the bench's pools)."""
    base = Path(tempfile.mkdtemp(prefix="jy-slurm-"))
    base.chmod(0o755)
    shutil.copytree(SCRIPTS, base, dirs_exist_ok=True)
    ssh_port, ctld_port, slurmd_port = free_ports(3)
    env = dict(
        os.environ,
        SSHPORT=str(ssh_port),
        CTLDPORT=str(ctld_port),
        SLURMDPORT=str(slurmd_port),
    )
    started = time.monotonic()
    try:
        result = subprocess.run(
            [str(base / "start.sh"), str(base)],
            env=env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"start.sh failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        info = dict(
            line.split("=", 1)
            for line in (base / "cluster.env").read_text().splitlines()
            if "=" in line
        )
        cluster = SlurmCluster(
            host=info["HOST"],
            port=int(info["PORT"]),
            user=info["USER"],
            private_key=Path(info["KEY"]),
            known_hosts=Path(info["KNOWN_HOSTS"]),
            slurm_conf=Path(info["SLURM_CONF"]),
            base=base,
            work=Path(info["WORK"]),
            partition=info["PARTITION"],
            start_seconds=time.monotonic() - started,
            python=_node_python(base),
        )
    except BaseException:
        _stop(base)
        shutil.rmtree(base, ignore_errors=True)
        raise
    try:
        yield cluster
    finally:
        stopped = _stop(base)
        left = _leftovers(base)
        shutil.rmtree(base, ignore_errors=True)
        if stopped.returncode != 0 or left:
            raise RuntimeError(
                f"SLURM test cluster not stopped cleanly:\n{stopped.stdout}{stopped.stderr}"
                f"left running: {left}"
            )


# -- what tests do on the cluster --------------------------------------------------------

SLURM = {"backend_type": "slurm", "partition": "debug"}


def cluster_details(cluster: SlurmCluster, **changes: Any) -> dict[str, Any]:
    """A ``slurm`` workspace's details for the cluster (a fresh results directory)."""
    return {
        "slurm_user": cluster.user,
        "slurm_hostname": [cluster.address],
        "base_results_dir": f"{cluster.work}/{uuid.uuid4().hex[:8]}",
        "ssh_private_key": cluster.private_key.read_text(),
        "known_hosts": cluster.known_hosts.read_text(),
        "slurm_python": str(cluster.python),
        **changes,
    }


def workspace(s: Any, cluster: SlurmCluster, **changes: Any) -> str:
    """A ``slurm`` workspace for the cluster, created through the API; returns its id."""
    details = cluster_details(cluster, **changes)
    body = {
        "name": f"cluster-{uuid.uuid4().hex[:6]}",
        "cloud_type": "slurm",
        "cloud_specific_details": details,
    }
    response = s.call("POST", "workspaces", json=body)
    assert response.status_code == 201, response.json
    return str(response.json["id"])


def slurm_command(cluster: SlurmCluster, *argv: str) -> subprocess.CompletedProcess[str]:
    """A SLURM client command run here as root (the test runner), not over SSH."""
    env = {"SLURM_CONF": str(cluster.slurm_conf), "PATH": "/usr/bin:/bin"}
    return subprocess.run(list(argv), env=env, capture_output=True, text=True, check=False)


def scontrol(cluster: SlurmCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return slurm_command(cluster, "scontrol", *args)


def job_field(cluster: SlurmCluster, slurm_job_id: str, field: str) -> str:
    """One field of ``scontrol show job`` (``JobState``, ``ExitCode`` ...), "" if unknown."""
    out = scontrol(cluster, "show", "job", "-o", slurm_job_id).stdout
    marker = f"{field}="
    return out.split(marker)[1].split()[0] if marker in out else ""


def squeue_state(cluster: SlurmCluster, slurm_job_id: str) -> str:
    return job_field(cluster, slurm_job_id, "JobState")
