"""The interface every compute backend implements.

A backend knows how to start one *run* of a job under a deterministic name,
report the state of many runs in one call, hand back the bytes each run wrote
since an offset, and stop a run. It keeps no state of its own between calls:
everything it needs comes back in the ``Handle`` the store keeps, so a worker
restart (or a different worker) can pick up where another left off.
"""

from __future__ import annotations

import enum
import socket
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar

from jobyard.backends.errors import UnsupportedOperation

# Exit code of a workload that checkpointed and stopped on SIGTERM (EX_TEMPFAIL).
EXIT_PAUSED = 75


class Capability(enum.Enum):
    """What a backend can do beyond the required operations, as data: consulted by the
    API (a graceful pause is refused where it cannot be honoured) and the engine (a stop
    falls back to a kill)."""

    GRACEFUL_STOP = "graceful_stop"  # delivers SIGTERM to the workload, then waits


class RunState(enum.StrEnum):
    QUEUED = "queued"  # accepted, not running yet (scheduling, pulling an image ...)
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PAUSED = "paused"  # exited EXIT_PAUSED after writing a checkpoint
    KILLED = "killed"  # stopped from outside before it could report an exit code
    LOST = "lost"  # the backend no longer knows the run

    @property
    def finished(self) -> bool:
        return self not in (RunState.QUEUED, RunState.RUNNING)


@dataclass(frozen=True)
class RunSpec:
    """Everything needed to start one run; built by the engine from the job."""

    job_id: str
    run: int
    action: str
    command: Sequence[str]
    specs: Mapping[str, Any]
    env: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: int = 3600
    parent: Handle | None = None  # the parent job's last run, for derived actions
    resources: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)  # backend_details
    network_arch: str = ""  # picks the container image where the backend has images
    org: str = ""  # labels what the run belongs to on shared clusters
    # from the catalog entry (backends/contract.py renders them as the run's machines see it)
    image: str = ""  # the entry's image for this backend; empty: the backend's default
    spec_format: str = "json"  # json | yaml: the spec file's format
    spec_fields: Mapping[str, str] = field(default_factory=dict)  # dotted key -> template
    status_link: str | None = None  # tao: where the workload writes its own status file
    parent_checkpoint: str | None = None  # chosen from the parent's results, relative
    encryption_key_field: str | None = None  # the key also goes into the spec there
    # never logged, never shown: the user's docker_env_vars and the model's encryption key
    secret_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    encryption_key: str | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """Deterministic run name: a retried submit finds the run it already started."""
        return run_name(self.job_id, self.run)


def run_name(job_id: str, run: int) -> str:
    return f"jy-{job_id}-r{run}"


@dataclass(frozen=True)
class Handle:
    """How a backend finds a run again; stored with the job as a plain dict."""

    backend: str
    name: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_doc(self) -> dict[str, Any]:
        return {"backend": self.backend, "name": self.name, "data": dict(self.data)}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Handle:
        return cls(doc["backend"], doc["name"], dict(doc.get("data", {})))


@dataclass(frozen=True)
class RunStatus:
    state: RunState
    exit_code: int | None = None
    reason: str = ""  # why it is queued or how it ended, shown in detailed_status
    started_at: float | None = None  # when it began running, as the backend saw it
    # A LOST run that was not the workload's fault (node failure, preemption): the engine
    # resubmits the job from its checkpoint, up to JOBYARD_NODE_FAILURE_RETRIES times.
    transient: bool = False


@dataclass(frozen=True)
class Endpoint:
    """A model server's place: what it binds (``JY_SERVE_HOST``/``JY_SERVE_PORT``, the
    ``{host}``/``{port}`` placeholders) and the base URL the API forwards requests to."""

    bind_host: str
    port: int
    url: str


def free_port() -> int:
    """A port the kernel says is free on this machine's loopback, for a model server to
    bind moments later (it fails at once, and reports so, if another took it meanwhile)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Offsets:
    status: int = 0
    log: int = 0


@dataclass(frozen=True)
class Output:
    """New bytes since the offsets asked for; the caller stores them, then advances."""

    status: bytes = b""
    log: bytes = b""
    more: bool = False  # a read stopped at max_bytes: bytes are waiting beyond this chunk


@dataclass(frozen=True)
class ResultFile:
    """One file a run's job left in its results directory."""

    path: str  # relative to the results directory, "/"-separated
    size: int
    modified: float  # epoch seconds


# Accelerator names that are not a GPU type: a place with no GPUs, and GPUs whose type the
# backend does not tell (an untyped ``gpu:4`` gres, a node without the product label).
CPU = "cpu"
UNTYPED_GPU = "gpu"


@dataclass(frozen=True)
class Accelerator:
    """One kind of accelerator in one place a backend runs jobs.

    ``name`` is what a job names in ``backend_details.gpu_type`` (``a100``, ``h100-sxm``),
    or ``cpu`` / ``gpu``; ``count`` is how many one run can get there, that is one node's
    worth (runs are single-node); ``where`` is the node, partition or node group, and
    ``nodes`` how many nodes there have them.
    """

    name: str
    count: int
    where: str
    nodes: int = 1


class Backend(ABC):
    name: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    # Model servers are reached through ``reach`` (a tunnel), not at their recorded URL.
    tunnels: ClassVar[bool] = False

    def supports(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def require(self, capability: Capability) -> None:
        if capability not in self.capabilities:
            raise UnsupportedOperation(f"backend {self.name} cannot {capability.value}")

    @abstractmethod
    def submit(self, spec: RunSpec) -> Handle:
        """Start the run named ``spec.name``, or return the one already started."""

    @abstractmethod
    def poll(self, handles: Sequence[Handle]) -> dict[str, RunStatus]:
        """State of every run in one call, keyed by run name."""

    @abstractmethod
    def read_output(
        self, requests: Sequence[tuple[Handle, Offsets]], max_bytes: int
    ) -> dict[str, Output]:
        """Status-file and log bytes written since the offsets, at most ``max_bytes`` each."""

    @abstractmethod
    def stop(self, handle: Handle, graceful: bool) -> None:
        """Ask the run to stop: SIGTERM (checkpoint, then exit) or at once."""

    @abstractmethod
    def cleanup(self, handle: Handle) -> None:
        """Release what the run holds on the backend; results stay."""

    def close(self) -> None:
        """Drop connections held for reuse; the backend is not used afterwards."""
        return None

    def results_location(self, handle: Handle) -> str:
        """Where the run's job writes results, as the backend names it."""
        return str(handle.data.get("results_dir", ""))

    def run_results_dir(self, handle: Handle) -> str:
        """The job's results directory as later runs on this backend see it (to read a
        dataset a dataset job produced there)."""
        return self.results_location(handle)

    def staging_dir(self, spec: RunSpec) -> str | None:
        """A directory this worker can write that the run will see at the same path, where
        datasets from object storage are copied before submit; None when there is none
        (the run's machines are elsewhere: give them datasets by a path they see)."""
        return None

    def serving_endpoint(self, spec: RunSpec) -> Endpoint:
        """Where a model server run (an inference microservice) will listen, chosen before
        it starts, and the address jobyard's API reaches it at."""
        raise UnsupportedOperation(f"backend {self.name} cannot serve models yet")

    def serving_addresses(self, handles: Sequence[Handle]) -> dict[str, str]:
        """Base URLs of model servers whose place is known only once they run (a SLURM node
        picks the port), by run name, in one call for all; those not placed yet are left
        out. Backends whose ``serving_endpoint`` has the URL have nothing to add."""
        return {}

    def reach(self, url: str) -> str:
        """``url`` (a server's base URL as recorded) as this process connects to it: the
        same, unless the backend's network is reached through it (SLURM: an SSH tunnel
        over the login node)."""
        return url

    def delete_results(self, files: Sequence[tuple[Handle, str]]) -> int:
        """Remove result files (a run's handle, a path inside its results) in one go, however
        many runs they belong to; a file already gone is not an error. Returns how many
        were removed. An AutoML search drops its losing trials' checkpoints with it."""
        raise UnsupportedOperation(f"backend {self.name} cannot delete results")

    def list_results(self, handle: Handle) -> list[ResultFile]:
        """Every file under the job's results directory (shared by all its runs)."""
        raise UnsupportedOperation(f"backend {self.name} cannot list results")

    def open_result(self, handle: Handle, path: str) -> AbstractContextManager[IO[bytes]]:
        """A readable binary stream of one result file, for streaming downloads.

        ``path`` is relative to the results directory; one that escapes it is refused.
        """
        raise UnsupportedOperation(f"backend {self.name} cannot read results")

    def accelerators(self) -> list[Accelerator]:
        """What runs can get here now: one entry per place and kind of accelerator, ``cpu``
        for places without any. One call to the backend's API or login node (Lepton: one
        per node group); the API caches the answer."""
        raise UnsupportedOperation(f"backend {self.name} cannot list its accelerators")
