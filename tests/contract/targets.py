"""The compute backends as the contract suite drives them: one ``Target`` each.

A target knows, for its backend, what the scenarios cannot say in general: the worker's
environment, what a job body needs (a workspace ...), how to make a job wait for capacity
or give the backend bad credentials, how to see that a run is gone, and the checks only
that backend can make. ``scenarios`` declares the optional scenarios it has; the suite runs
each test for the targets that declare it (tests/contract/conftest.py). A new backend gets
the whole contract by adding one ``Target`` subclass to ``TARGETS``.
"""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from jobyard.schemas.settings import Settings
from tests.helpers import wait_for
from tests.integration.test_engine import train
from tests.kubernetes.conftest import api_settings, kube_env
from tests.lepton.conftest import lepton_id, lepton_workspace
from tests.slurm.cluster import SLURM, job_field, slurm_command, squeue_state, workspace

# the optional scenarios; train, graceful pause/resume, cancel and timeout are every target's
ABRUPT_PAUSE = "abrupt pause"
PENDING = "pending reason"
BAD_CREDENTIALS = "bad credentials"
SERVING = "serving"  # runs inference microservices
OPTIONAL = frozenset({ABRUPT_PAUSE, PENDING, BAD_CREDENTIALS, SERVING})


@dataclass(frozen=True)
class BadCredentials:
    """How a target's jobs meet credentials the backend refuses."""

    secret: str  # must never show in the job
    env: dict[str, str] = field(default_factory=dict)  # for the worker
    body: dict[str, Any] = field(default_factory=dict)  # for the job


class Target:
    name: ClassVar[str]
    scenarios: ClassVar[frozenset[str]] = frozenset()
    # epochs and pace of a run long enough that a pause lands mid-run, and the run resumed
    pause_run: ClassVar[tuple[int, float]] = (8, 0.4)
    # seconds a timed-out run may take to end beyond one tick and the grace period
    timeout_slack: ClassVar[float] = 20.0
    # jobyard reads the run's results where it ran (list_files, downloads, choosing a
    # parent's checkpoint); Lepton's stay on the workspace's storage backend
    lists_results: ClassVar[bool] = True

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.request = request
        self.workspace: str | None = None

    # -- set-up ------------------------------------------------------------------------

    def configure(self, settings: Settings) -> Settings:
        """The API's settings for this backend."""
        return settings

    def prepare(self, s: Any) -> None:
        """Create, through the API, what this backend's jobs need (a workspace)."""

    def worker_env(self) -> dict[str, str]:
        return {}

    def body(self) -> dict[str, Any]:
        """Added to every job body."""
        return {}

    @property
    def backend(self) -> str:
        """The job's ``backend`` as the store records it."""
        raise NotImplementedError

    def fields(self, **overrides: Any) -> dict[str, Any]:
        """A job body's fields for this backend; ``backend_details`` are merged."""
        body = self.body()
        details = {**body.get("backend_details", {}), **overrides.pop("backend_details", {})}
        fields = {**body, **overrides}
        if details:
            fields["backend_details"] = details
        return fields

    def train(self, s: Any, epochs: int = 3, pace: float = 0.0, **overrides: Any) -> str:
        """A train job of the reference workload on this backend."""
        return str(train(s, epochs, pace, **self.fields(**overrides)))

    def close(self) -> None:
        """Undo what the scenario left on the backend (after the worker stopped)."""

    # -- the run -----------------------------------------------------------------------

    def run_of(self, store: Any, job_id: str) -> dict[str, Any]:
        """What identifies the job's current run, taken while it runs."""
        return dict(store.jobs.find(job_id)["handle"]["data"])

    def assert_gone(self, run: dict[str, Any]) -> None:
        """Wait until nothing of ``run`` is left running on the backend."""
        raise NotImplementedError

    def check_done(self, s: Any, store: Any, job_id: str, run: dict[str, Any]) -> None:
        """This backend's own checks of a train job that is Done."""

    def check_paused(self, job_id: str, run: dict[str, Any]) -> None:
        """This backend's own checks of a graceful pause (once ``run`` is gone)."""

    def check_resumed(self, store: Any, job_id: str, first: dict[str, Any]) -> None:
        """This backend's own checks of a job resumed to Done; ``first`` was run 1."""

    # -- PENDING -----------------------------------------------------------------------

    def block(self, s: Any) -> dict[str, Any]:
        """Make the next job wait; returns what its body needs for that."""
        raise NotImplementedError

    def is_waiting(self, message: str) -> bool:
        """``message`` is the backend's reason for a job that waits."""
        raise NotImplementedError

    def check_waiting(self, message: str) -> None:
        raise NotImplementedError

    def unblock(self, s: Any, job_id: str) -> str:
        """Let the waiting job go (or give up on it); returns the status it ends in."""
        raise NotImplementedError

    # -- BAD_CREDENTIALS ---------------------------------------------------------------

    def bad_credentials(self, s: Any) -> BadCredentials:
        raise NotImplementedError

    def check_refused(self, message: str) -> None:
        """The job's message says what was refused, in this backend's words."""
        raise NotImplementedError

    def assert_nothing_submitted(self, job_id: str) -> None:
        raise NotImplementedError


# -- process ------------------------------------------------------------------------------


class ProcessTarget(Target):
    name = "process"
    scenarios = frozenset({ABRUPT_PAUSE, SERVING})
    timeout_slack = 4.0  # a local process group: SIGTERM lands at once

    @property
    def backend(self) -> str:
        return "process"

    def assert_gone(self, run: dict[str, Any]) -> None:
        pid = int(run["pid"])

        def gone() -> bool:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return True
            return _zombie(pid)

        wait_for(gone, 10, "process group gone")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


# -- Kubernetes (the API server double) ---------------------------------------------------


class KubernetesTarget(Target):
    name = "kubernetes"
    scenarios = frozenset({ABRUPT_PAUSE, PENDING, BAD_CREDENTIALS, SERVING})
    pause_run = (10, 0.5)

    def __init__(self, request: pytest.FixtureRequest) -> None:
        super().__init__(request)
        self.fake = request.getfixturevalue("kubernetes_api")
        self.volume = request.getfixturevalue("volume")

    def configure(self, settings: Settings) -> Settings:
        return api_settings(settings, self.fake, self.volume)

    def worker_env(self) -> dict[str, str]:
        return kube_env(self.fake, self.volume)

    @property
    def backend(self) -> str:
        return "kubernetes"

    def run_of(self, store: Any, job_id: str) -> dict[str, Any]:
        return {**super().run_of(store, job_id), "procs": list(self.fake.procs.values())}

    def assert_gone(self, run: dict[str, Any]) -> None:
        procs = run["procs"]
        assert procs, "the run's pod had no process"
        wait_for(lambda: all(p.poll() is not None for p in procs), 10, "the workload gone")
        wait_for(lambda: not self.fake.jobs and not self.fake.pods, 10, "Job and pod deleted")

    def _created(self, job_id: str) -> list[str]:
        return [n for n in self.fake.created if n.startswith(f"jy-{job_id}-")]

    def check_done(self, s: Any, store: Any, job_id: str, run: dict[str, Any]) -> None:
        assert self.fake.created == [f"jy-{job_id}-r1"]  # a redispatch finds the Job

    def check_paused(self, job_id: str, run: dict[str, Any]) -> None:
        requests = self.fake.requests
        deletes = [r for r in requests if r.method == "DELETE" and r.path.endswith("/pods")]
        assert deletes[0].query["gracePeriodSeconds"] == "3"  # the worker's grace period

    def check_resumed(self, store: Any, job_id: str, first: dict[str, Any]) -> None:
        assert self._created(job_id) == [f"jy-{job_id}-r1", f"jy-{job_id}-r2"]  # one per run

    def block(self, s: Any) -> dict[str, Any]:
        return {"backend_details": {"backend_type": "local", "num_gpus": 2}}  # the node has none

    def is_waiting(self, message: str) -> bool:
        return "unschedulable" in message

    def check_waiting(self, message: str) -> None:
        assert "Insufficient nvidia.com/gpu" in message

    def unblock(self, s: Any, job_id: str) -> str:
        s.call("POST", f"jobs/{job_id}:cancel")  # no GPU will come
        return "Canceled"

    def bad_credentials(self, s: Any) -> BadCredentials:
        token = "expired-token"
        expired = self.volume.parent / "expired"  # not the kubeconfig worker_env() writes
        expired.mkdir()
        kubeconfig = self.fake.write_kubeconfig(expired, token=token)
        return BadCredentials(secret=token, env={"JOBYARD_KUBERNETES_KUBECONFIG": str(kubeconfig)})

    def check_refused(self, message: str) -> None:
        assert "rejected jobyard's credentials (401 Unauthorized)" in message

    def assert_nothing_submitted(self, job_id: str) -> None:
        assert not self.fake.jobs


# -- Lepton (the API double) --------------------------------------------------------------


class LeptonTarget(Target):
    name = "lepton"
    scenarios = frozenset({ABRUPT_PAUSE, PENDING, BAD_CREDENTIALS})
    lists_results = False

    def __init__(self, request: pytest.FixtureRequest) -> None:
        super().__init__(request)
        self.fake = request.getfixturevalue("lepton_api")
        self.volume = request.getfixturevalue("volume")

    def prepare(self, s: Any) -> None:
        self.workspace = lepton_workspace(s, self.fake, results_root=str(self.volume))

    def body(self) -> dict[str, Any]:
        return {"workspace": self.workspace, "backend_details": {"backend_type": "lepton"}}

    @property
    def backend(self) -> str:
        return f"lepton:{self.workspace}"

    def run_of(self, store: Any, job_id: str) -> dict[str, Any]:
        lepton_job = lepton_id(store, job_id)
        return {"lepton_job": lepton_job, "proc": self.fake.procs[f"{lepton_job}-0-abcde"]}

    def assert_gone(self, run: dict[str, Any]) -> None:
        run["proc"].wait(timeout=10)  # the container ended (raises if it still runs)
        lepton_job = run["lepton_job"]
        wait_for(lambda: self.fake.state(lepton_job) is None, 10, "Lepton job deleted")

    def check_paused(self, job_id: str, run: dict[str, Any]) -> None:
        # stopped (not deleted: the workload checkpointed), then deleted once the job is
        # Paused, since a resume is a new Lepton job
        first = run["lepton_job"]
        assert self.fake.calls("PATCH", f"/jobs/{first}")[0][3] == {"spec": {"stopped": True}}
        assert self.fake.calls("DELETE", f"/jobs/{first}")

    def check_resumed(self, store: Any, job_id: str, first: dict[str, Any]) -> None:
        assert lepton_id(store, job_id) != first["lepton_job"]  # a new Lepton job per run

    def block(self, s: Any) -> dict[str, Any]:
        self.fake.capacity = 0
        return {}

    def is_waiting(self, message: str) -> bool:
        return message.startswith("queued on Lepton")

    def check_waiting(self, message: str) -> None:
        assert message == "queued on Lepton: waiting for cpu.small capacity"

    def unblock(self, s: Any, job_id: str) -> str:
        self.fake.capacity = None
        return "Done"

    def bad_credentials(self, s: Any) -> BadCredentials:
        token = "not-the-token-42"
        return BadCredentials(
            secret=token, body={"workspace": lepton_workspace(s, self.fake, token=token)}
        )

    def check_refused(self, message: str) -> None:
        assert message.startswith("submit failed: Lepton rejected the token for workspace testws")

    def assert_nothing_submitted(self, job_id: str) -> None:
        assert not self.fake.jobs


# -- SLURM (a real cluster behind a real sshd) --------------------------------------------


class SlurmTarget(Target):
    name = "slurm"
    scenarios = frozenset({ABRUPT_PAUSE, PENDING, BAD_CREDENTIALS, SERVING})
    pause_run = (12, 0.5)  # SSH and SLURM's scheduling between the pause and the signal

    def __init__(self, request: pytest.FixtureRequest) -> None:
        super().__init__(request)
        self.cluster = request.getfixturevalue("slurm_cluster")
        self.blockers: list[str] = []

    def prepare(self, s: Any) -> None:
        self.workspace = workspace(s, self.cluster)

    def body(self) -> dict[str, Any]:
        return {"workspace": self.workspace, "backend_details": dict(SLURM)}

    @property
    def backend(self) -> str:
        return f"slurm:{self.workspace}"

    def close(self) -> None:
        if self.blockers:
            slurm_command(self.cluster, "scancel", *self.blockers)

    def assert_gone(self, run: dict[str, Any]) -> None:
        slurm_id = run["slurm_job_id"]
        wait_for(
            lambda: squeue_state(self.cluster, slurm_id) not in {"RUNNING", "PENDING"},
            30,
            "the SLURM job to end",
        )

    def check_done(self, s: Any, store: Any, job_id: str, run: dict[str, Any]) -> None:
        assert run["login_node"] == self.cluster.address
        assert squeue_state(self.cluster, run["slurm_job_id"]) == "COMPLETED"
        # results stay on the cluster and come through the jobs file endpoints over SFTP
        listed = s.call("POST", f"jobs/{job_id}:list_files", json={}).json
        assert {"model_best.npz", "model_latest.npz", "train_summary.json"} <= set(listed)
        best = s.call("POST", f"jobs/{job_id}:download_selective_files", json={"best_model": True})
        with tarfile.open(fileobj=io.BytesIO(best.get_data()), mode="r:gz") as tar:
            assert [m.name for m in tar.getmembers()] == [f"{job_id}/model_best.npz"]
        # the secret never comes back
        shown = s.call("GET", f"workspaces/{self.workspace}").json["cloud_specific_details"]
        assert "PRIVATE KEY" not in str(shown)

    def check_paused(self, job_id: str, run: dict[str, Any]) -> None:
        # `scancel --signal=TERM --full` reached the batch script itself (the workload), which
        # checkpointed and exited 75; plain --signal reaches job steps only
        assert job_field(self.cluster, run["slurm_job_id"], "ExitCode") == "75:0"

    def block(self, s: Any) -> dict[str, Any]:
        """A job of the cluster's own holding the whole node until ``unblock``."""
        submitted = slurm_command(
            self.cluster,
            "sbatch",
            "--parsable",
            "--exclusive",
            f"--partition={self.cluster.partition}",
            "--job-name=contract-blocker",
            "--output=/dev/null",
            "--chdir=/tmp",
            "--wrap=sleep 300",
        )
        assert submitted.returncode == 0, submitted.stderr
        blocker = submitted.stdout.strip().split(";")[0]
        self.blockers.append(blocker)
        wait_for(lambda: squeue_state(self.cluster, blocker) == "RUNNING", 30, "the blocker")
        return {}

    def is_waiting(self, message: str) -> bool:
        return message.startswith("pending: waiting")

    def check_waiting(self, message: str) -> None:
        assert "waiting for free resources (Resources)" in message, message

    def unblock(self, s: Any, job_id: str) -> str:
        slurm_command(self.cluster, "scancel", *self.blockers)
        return "Done"

    def bad_credentials(self, s: Any) -> BadCredentials:
        key = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        text = key.decode()
        ws = workspace(s, self.cluster, ssh_private_key=text)
        return BadCredentials(secret=text.splitlines()[1], body={"workspace": ws})

    def check_refused(self, message: str) -> None:
        assert f"{self.cluster.address} refused the key for user {self.cluster.user}" in message

    def assert_nothing_submitted(self, job_id: str) -> None:
        jobs = slurm_command(self.cluster, "scontrol", "show", "job", "-o").stdout
        assert f"jy-{job_id}-" not in jobs


TARGETS: dict[str, type[Target]] = {
    t.name: t for t in (ProcessTarget, KubernetesTarget, LeptonTarget, SlurmTarget)
}
for _target in TARGETS.values():
    assert _target.scenarios <= OPTIONAL, (_target.name, _target.scenarios - OPTIONAL)
