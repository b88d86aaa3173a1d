"""The four backend pools as the pools phase drives them, one context manager each.

Each brings its backend up the way the test suite does (tests/contract/targets.py): the
process backend on this host, the Kubernetes and Lepton API doubles (in a process of
their own, ``bench.doubles``), the real SLURM cluster of tests/slurm/cluster.py (munged,
slurmctld, slurmd and sshd on free loopback ports). It yields a ``Pool``: the worker's
settings, what a job body needs (a workspace, created through the API), the raw
baseline client, and how to count the calls jobyard's backend makes on the wire.

On the way out every run is ended whatever happened before, and the pool's directory
is checked: no process that names it may be left (the SLURM cluster's own teardown
checks its directory the same way).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import doubles
from bench.rawbackends import Raw, RawKubernetes, RawLepton, RawProcess, RawSlurm
from bench.servers import Bench, kill_runs
from bench.stats import wait_until
from jobyard.backends.base import Backend
from jobyard.schemas.settings import Settings
from tests.slurm import cluster as slurm

Prepare = Callable[[Any], dict[str, Any]]  # a logged-in API session -> job body fields


class Meter:
    """Calls of chosen methods of live objects (a backend, its client), and the seconds
    spent in them, read per pass. Thread-safe: the Lepton backend reads logs from a
    thread pool (its seconds then add up to more than the pass's)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def watch(
        self,
        obj: object,
        name: str,
        what: Callable[[tuple[Any, ...]], Mapping[str, int]] | None = None,
    ) -> None:
        """Count ``obj.name`` from now on: under ``name``, or under the names ``what`` makes of
        the call's arguments (its seconds go to the first of them)."""
        inner = getattr(obj, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            keys = what(args) if what is not None else {name: 1}
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                with self._lock:
                    self.counts.update(keys)
                    self.seconds[next(iter(keys))] += elapsed

        setattr(obj, name, counted)  # on the instance: the backend's own calls go through it

    def take(self) -> tuple[dict[str, int], dict[str, float]]:
        """(calls, milliseconds) by name since the last take."""
        with self._lock:
            found = dict(self.counts), {k: v * 1000 for k, v in self.seconds.items()}
            self.counts.clear()
            self.seconds.clear()
        return found


@dataclass
class Pool:
    """A backend pool up and ready: what the phase needs to drive it and its baseline."""

    name: str
    settings: Settings
    raw: Raw
    prepare: Prepare = lambda _session: {}
    capacity: int | None = None  # runs the backend runs at once; None: every one
    wire: Callable[[Backend, Meter], None] = lambda _backend, _meter: None
    notes: dict[str, Any] = field(default_factory=dict)
    # ends, on the backend, the runs it still holds queued, once their jobs are canceling
    unqueue: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class Place:
    """Where a pool lives: its directory, and the settings every pool shares (the bench's
    servers, the phase's own database)."""

    bench: Bench
    directory: Path
    env: Mapping[str, str]

    def settings(self, **extra: str) -> Settings:
        data = str(self.directory / "data")
        return Settings.from_env(self.bench.env(**self.env, JOBYARD_DATA_DIR=data, **extra))


def leftovers(directory: Path) -> list[int]:
    """Processes whose command line or environment names ``directory`` (every run of a
    pool has its paths there: a launcher's arguments, a pod's or container's JY_* env)."""
    needle = str(directory).encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            with contextlib.suppress(OSError):
                proc = Path("/proc") / entry
                if (
                    needle
                    in proc.joinpath("cmdline").read_bytes() + proc.joinpath("environ").read_bytes()
                ):
                    found.append(int(entry))
    return found


@contextlib.contextmanager
def _checked(place: Place) -> Iterator[None]:
    """The pool's directory; once the pool is down, no process may still name it."""
    place.directory.mkdir(parents=True, exist_ok=True)
    yield
    left = leftovers(place.directory)
    if left:
        raise RuntimeError(f"pools: processes left under {place.directory}: {left}")


# -- process ------------------------------------------------------------------------------


@contextlib.contextmanager
def process(place: Place) -> Iterator[Pool | None]:
    with _checked(place):
        settings = place.settings()
        raw = RawProcess()
        try:
            yield Pool("process", settings, raw)
        finally:
            raw.close()
            kill_runs(settings.runs_dir)


# -- the API doubles ----------------------------------------------------------------------


@contextlib.contextmanager
def _double(place: Place, kind: str) -> Iterator[dict[str, Any]]:
    """The double of ``kind`` in a child process, and what it wrote about itself."""
    proc = place.bench.start(
        f"double-{kind}", ["-m", "bench.doubles", kind, str(place.directory)], place.bench.env()
    )
    info = place.directory / doubles.INFO
    try:
        wait_until(lambda: info.exists() or not proc.alive(), 30, f"the {kind} double")
        if not proc.alive():
            raise RuntimeError(f"the {kind} double exited: see {place.bench.work}/{proc.name}.log")
        yield json.loads(info.read_text())
    finally:
        place.bench.stop_child(proc)  # SIGTERM: the double kills every run it started


def _kubernetes_wire(backend: Backend, meter: Meter) -> None:
    api = backend.api  # type: ignore[attr-defined]
    for name in ("create_job", "read_job", "list_jobs", "list_pods", "pod_log", "delete_pods"):
        meter.watch(api, name)


@contextlib.contextmanager
def kubernetes(place: Place) -> Iterator[Pool | None]:
    with _checked(place), _double(place, "kubernetes") as info:
        env = dict(info["worker_env"])
        settings = place.settings(**env)
        raw = RawKubernetes(Path(env["JOBYARD_KUBERNETES_KUBECONFIG"]))
        try:
            yield Pool("kubernetes", settings, raw, wire=_kubernetes_wire)
        finally:
            raw.close()


def _lepton_path(args: tuple[Any, ...]) -> dict[str, int]:
    method, path = args[0], str(args[1])
    parts = path.split("/")
    shape = "/".join("{id}" if i == 2 else p for i, p in enumerate(parts))
    return {f"{method} {shape}": 1}


def _lepton_wire(backend: Backend, meter: Meter) -> None:
    client = backend.client  # type: ignore[attr-defined]
    meter.watch(client, "_json", _lepton_path)
    meter.watch(client, "replica_log", lambda _: {"GET /jobs/{id}/replicas/{id}/log": 1})


@contextlib.contextmanager
def lepton(place: Place) -> Iterator[Pool | None]:
    with _checked(place), _double(place, "lepton") as info:
        details = info["workspace"]

        def prepare(session: Any) -> dict[str, Any]:
            body = {"name": "lepton", "cloud_type": "lepton", "cloud_specific_details": details}
            created = session.call("POST", "workspaces", json=body)
            assert created.status_code == 201, created.json
            return {"workspace": created.json["id"], "backend_details": {"backend_type": "lepton"}}

        raw = RawLepton(info["url"], details["lepton_auth_token"])
        try:
            yield Pool("lepton", place.settings(), raw, prepare, wire=_lepton_wire)
        finally:
            raw.close()


# -- SLURM --------------------------------------------------------------------------------


def _slurm_wire(backend: Backend, meter: Meter) -> None:
    shell = backend.shell  # type: ignore[attr-defined]
    meter.watch(shell, "run", lambda _: {"ssh exec": 1})
    meter.watch(shell, "sftp_put_many", lambda _: {"sftp write session": 1})
    meter.watch(
        shell,
        "sftp_read_many",
        lambda args: {"sftp read session": 1, "files read in it": len(args[0])},
    )


def _node_cpus(cluster: slurm.SlurmCluster) -> int:
    """Runs the one node starts at once: one CPU each (SelectTypeParameters=CR_CPU)."""
    found = slurm.slurm_command(cluster, "sinfo", "-h", "-o", "%c").stdout.split()
    return int(found[0]) if found else 1


def _unqueue(cluster: slurm.SlurmCluster) -> None:
    """What an operator does today to cancel jobs SLURM holds queued: jobyard's stop
    (``scancel --signal=TERM --full ID || scancel ID``) does not end them. On SLURM
    22.05, ``scancel --signal`` of a pending job does not fail: it waits until the job
    starts (a job queued behind others: until the SSH command times out, 30 s, and the
    next tick tries again), so a pass canceling 30 queued jobs takes minutes. Jobyard's
    reconcile then finds these runs CANCELLED, and their canceling jobs Canceled."""
    slurm.slurm_command(cluster, "scancel", "--state=PENDING", "-u", cluster.user)


def _cancel_everything(cluster: slurm.SlurmCluster) -> None:
    slurm.slurm_command(cluster, "scancel", "-u", cluster.user)

    def empty() -> bool:
        return not slurm.slurm_command(cluster, "squeue", "-h").stdout.strip()

    wait_until(empty, 30, "the SLURM queue to empty", 0.2)


@contextlib.contextmanager
def slurm_pool(place: Place) -> Iterator[Pool | None]:
    if shutil.which("slurmctld") is None:
        print(
            "[bench] pools: slurm pool SKIPPED: SLURM is not installed (slurmctld not on "
            "PATH; apt-get install slurm-wlm slurm-client munge openssh-server bc)",
            file=sys.stderr,
        )
        yield None
        return
    with _checked(place), slurm.started_cluster() as cluster:

        def prepare(session: Any) -> dict[str, Any]:
            return {
                "workspace": slurm.workspace(session, cluster),
                "backend_details": dict(slurm.SLURM),
            }

        raw, cpus = RawSlurm(cluster), _node_cpus(cluster)
        notes = {"cluster_start_s": cluster.start_seconds, "node_cpus": cpus}
        try:
            yield Pool(
                "slurm",
                place.settings(),
                raw,
                prepare,
                cpus,
                _slurm_wire,
                notes,
                unqueue=lambda: _unqueue(cluster),
            )
        finally:
            raw.close()
            _cancel_everything(cluster)


POOLS = {
    "process": process,
    "kubernetes": kubernetes,
    "slurm": slurm_pool,
    "lepton": lepton,
}
