"""Churn without loss: trivial jobs accepted at full speed by two worker pools while
workers are SIGKILLed and restarted every few seconds, Redis is restarted once (empty:
no persistence, so every queued message and dispatch line is gone) and the API once
(SIGKILL). Every job the API answered 201 for must end Done, its run started exactly
once (the bench_counted workload notes each start in its results directory), none stuck.

The same run without faults, on the same servers, is the baseline of the drain time.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from bench import experiments
from bench.client import Api, login
from bench.servers import Bench, Proc, wait_for_celery
from bench.stats import Figure, concurrent_rate
from jobyard import embedded
from jobyard.schemas.job import JobState

POOLS = 2  # worker pools (Celery workers), each of
CONCURRENCY = 2  # processes
KILL_EVERY = 3.0  # seconds between SIGKILLs of a worker
STALL_SECONDS = float(
    os.environ.get("CHURN_STALL", "120")
)  # no job finishing for this long: the rest are stuck
DONE = JobState.DONE.value


@dataclass
class Outcome:
    """What one run did: the figures and everything the invariants are checked on."""

    jobs: int
    faults: bool
    accepted: list[str] = field(default_factory=list)
    refused: int = 0  # answers other than 201, or none (the API down)
    drain_seconds: float = 0.0
    not_done: dict[str, str] = field(default_factory=dict)  # job -> status, of all stored
    starts: dict[str, int] = field(default_factory=dict)  # job -> launcher starts
    events: list[str] = field(default_factory=list)  # the faults, when
    progress: list[int] = field(default_factory=list)  # jobs Done, once a second of the drain

    @property
    def started_twice(self) -> list[str]:
        return sorted(j for j, n in self.starts.items() if n > 1)

    @property
    def never_started(self) -> list[str]:
        return sorted(j for j in self.accepted if self.starts.get(j, 0) == 0)

    @property
    def jobs_per_second(self) -> float:
        return len(self.accepted) / self.drain_seconds if self.drain_seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "faults": self.faults,
            "accepted": len(self.accepted),
            "refused": self.refused,
            "drain_s": round(self.drain_seconds, 2),
            "jobs_per_s": round(self.jobs_per_second, 1),
            "not_done": len(self.not_done),
            "started_twice": len(self.started_twice),
            "never_started": len(self.never_started),
            "events": self.events,
            "done_per_second": self.progress,
        }


class _Cluster:
    """The worker pools, the one beat and the API of a churn run, and the faults."""

    def __init__(self, bench: Bench, api_proc: Proc | None) -> None:
        self.bench = bench
        self.api_proc = api_proc
        self.pools = [self._worker() for _ in range(POOLS)]
        self.beat = bench.start("beat", ["-m", "bench.serve", "beat"], bench.worker_env())
        self.started = time.monotonic()
        self.events: list[str] = []

    def _worker(self) -> Proc:
        argv = ["-m", "bench.serve", "worker", "--concurrency", str(CONCURRENCY)]
        proc = self.bench.start("worker", argv, self.bench.worker_env())
        wait_for_celery(self.bench.redis, proc)
        return proc

    def note(self, what: str) -> None:
        self.events.append(f"{time.monotonic() - self.started:6.1f}s {what}")

    def kill_worker(self, i: int) -> None:
        victim = self.pools[i]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(victim.pid, signal.SIGKILL)  # the worker and its pool: a lost machine
        victim.popen.wait()
        self.bench.stop_child(victim)
        self.note(f"SIGKILL worker {i} (pid {victim.pid})")
        self.pools[i] = self._worker()

    def restart_redis(self) -> None:
        redis_child = next((c for c in self.bench.servers if c.name == "redis"), None)
        if redis_child is None:
            self.note("Redis is external: not restarted")
            return
        port = int(str(self.bench.settings.redis_url).rsplit(":", 1)[1].split("/")[0])
        redis_child.stop()
        self.note("Redis stopped (its data gone)")
        self.bench.servers[self.bench.servers.index(redis_child)] = embedded.start_redis(
            self.bench.work / "redis", port=port, persist=False
        )
        self.note("Redis started, empty")

    def restart_api(self) -> None:
        if self.api_proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.api_proc.pid, signal.SIGKILL)
        self.bench.stop_child(self.api_proc)
        self.note("API SIGKILLed")
        self.api_proc = self.bench.start_api()
        self.note("API up again")

    def stop(self) -> None:
        for proc in [*self.pools, self.beat]:
            self.bench.stop_child(proc)


def _kills(cluster: _Cluster, done: threading.Event) -> None:
    """SIGKILL a worker every KILL_EVERY seconds (taking turns) until the jobs are drained."""
    kills = 0
    while not done.wait(KILL_EVERY):
        cluster.kill_worker(kills % POOLS)
        kills += 1


def _restarts(cluster: _Cluster, outcome: Outcome, done: threading.Event) -> None:
    """Redis restarted once a third of the jobs is accepted, the API at two thirds: in a
    thread of their own, so a kill waiting for its replacement worker cannot push them
    past the end of the submissions."""
    for share, restart in ((1 / 3, cluster.restart_redis), (2 / 3, cluster.restart_api)):
        while len(outcome.accepted) < share * outcome.jobs:
            if done.wait(0.02):
                return
        restart()


def _submit(api: Api, jobs: int, outcome: Outcome, clients: int) -> None:
    """POST ``jobs`` jobs from ``clients`` threads, each retried until accepted (with a new
    name: an attempt whose answer was lost may have been stored, and must end Done too)."""
    lock = threading.Lock()
    experiment = experiments.COUNTED

    def one(_: int) -> None:
        while True:
            body = experiments.job_body(experiment, f"churn-{uuid.uuid4().hex[:12]}")
            try:
                status, answer = api.call("POST", api.org_path("jobs"), body)
            except (OSError, http.client.HTTPException):
                status, answer = 0, None
            with lock:
                if status == 201:
                    outcome.accepted.append(answer["id"])
                    return
                outcome.refused += 1
            time.sleep(0.05)  # the API or Redis is restarting: do not spin

    concurrent_rate(one, jobs, clients)


def _drain(bench: Bench, org: str, outcome: Outcome) -> dict[str, str]:
    """Wait until every stored job of ``org`` is Done, or nothing ends for STALL_SECONDS;
    returns the jobs not Done, with their status. Samples jobs Done once a second."""
    last, since, start = -1, time.monotonic(), time.monotonic()
    while True:
        done = bench.store.db.jobs.count_documents({"org": org, "status": DONE})
        total = bench.store.db.jobs.count_documents({"org": org})
        if not outcome.progress or time.monotonic() - start >= len(outcome.progress):
            outcome.progress.append(done)
        if done == total:
            return {}
        if done != last:
            last, since = done, time.monotonic()
        elif time.monotonic() - since > STALL_SECONDS:
            rest = bench.store.db.jobs.find({"org": org, "status": {"$ne": DONE}}, {"status": 1})
            return {str(j["_id"]): str(j["status"]) for j in rest}
        time.sleep(0.2)


def _starts(bench: Bench) -> collections.Counter[str]:
    counted: collections.Counter[str] = collections.Counter()
    for path in bench.settings.runs_dir.rglob("starts"):
        counted.update(line.strip() for line in path.read_text().splitlines() if line.strip())
    return counted


def run(
    bench: Bench,
    jobs: int,
    faults: bool,
    api_proc: Proc | None,
    clients: int = 8,
) -> tuple[Outcome, Proc | None]:
    """One churn run in a fresh org; returns what it did and the API process now serving
    (the old one is gone after an API restart)."""
    org = f"churn{uuid.uuid4().hex[:6]}"
    api = login(bench, org)
    outcome = Outcome(jobs, faults)
    cluster = _Cluster(bench, api_proc)
    drained = threading.Event()
    chaos = [
        threading.Thread(target=_kills, args=(cluster, drained), daemon=True),
        threading.Thread(target=_restarts, args=(cluster, outcome, drained), daemon=True),
    ]
    try:
        start = time.perf_counter()
        if faults:
            for thread in chaos:
                thread.start()
        _submit(api, jobs, outcome, clients)
        outcome.not_done = _drain(bench, org, outcome)
        outcome.drain_seconds = time.perf_counter() - start
        drained.set()
        if faults:
            for thread in chaos:
                thread.join()
    finally:
        drained.set()
        cluster.stop()
        api.close()
    counted = _starts(bench)
    ids = [str(j["_id"]) for j in bench.store.db.jobs.find({"org": org}, {"_id": 1})]
    outcome.starts = {j: counted.get(j, 0) for j in ids}
    outcome.events = cluster.events
    return outcome, cluster.api_proc


def churn(bench: Bench, api_proc: Proc, jobs: int) -> list[Figure]:
    """The figure: drain time and jobs/s with faults against the same run without."""
    calm, api_proc_after = run(bench, jobs, False, api_proc)
    stormy, _ = run(bench, jobs, True, api_proc_after)
    lost = len(stormy.not_done) + len(stormy.started_twice) + len(stormy.never_started)
    return [
        Figure(
            f"churn: {jobs} trivial jobs drained under faults",
            "jobs/s",
            stormy.jobs_per_second,
            calm.jobs_per_second,
            "the same run without faults",
            "every 201 ends Done, each run started once, none stuck",
            lost == 0 and not calm.not_done,
            {"faults": stormy.summary(), "no_faults": calm.summary()},
        )
    ]
