"""What ONE worker process of each backend pool carries (``process``, ``kubernetes``,
``slurm``, ``lepton``: the Celery queues of ``backends.registry.queue_for``), measured in
this process with no Celery, so that operators size each pool on its own figures.

Per pool (``bench.pool_targets`` brings each backend up):

- **dispatch**: jobs per second through ``engine.dispatch`` of `sleep 600` jobs created
  Pending through the API (an in-process app on this phase's own database), against the
  backend's client making the raw submit call alone (``bench.rawbackends``) the same
  number of times, on the same double or cluster, right after;
- **reconcile**: ``engine.reconcile`` of the pool's target at each level of running jobs
  (the dispatched ones, left running), with the calls it made counted at the backend's
  interface and on the wire, against the raw status listing of the same runs.

The phase has a database of its own: other phases leave `process` jobs active (the scale
phase's 1,000), which reconcile would otherwise watch too. Its runs end through jobyard
(every job canceled, reconcile until none is active), and then for certain on the way
out of each pool (``pool_targets``).
"""

from __future__ import annotations

import collections
import contextlib
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bench import experiments, pool_targets
from bench.plan import Plan
from bench.pool_targets import Meter, Place, Pool
from bench.scale import StubCelery
from bench.servers import Bench
from bench.stats import Figure, median
from jobyard.api import create_app
from jobyard.backends.base import Handle
from jobyard.backends.registry import queue_for
from jobyard.schemas.job import JobState
from jobyard.store import Store, connect
from jobyard.store.crypto import Cipher
from jobyard.store.jobs import ACTIVE
from jobyard.workers import engine
from jobyard.workers.context import Context
from tests import conftest

# running jobs at which reconcile is timed; dispatch is timed on the way up
LEVELS = {"full": (10, 100), "quick": (2, 4)}
PASSES = {"full": 3, "quick": 1}  # reconcile passes timed per level (median kept)
ORG = "pools"
SETTLE_SECONDS = 60.0
CANCEL_SECONDS = 60.0
# a moment per run just removed, for the backend to be done with it before passes are timed
QUIET_SECONDS_PER_RUN, QUIET_SECONDS_MAX = 0.005, 0.5


@contextlib.contextmanager
def _database(bench: Bench) -> Iterator[Store]:
    s = bench.settings
    assert s.mongo_uri and s.encryption_key
    name = f"{s.mongo_db}_pools"
    store = connect(s.mongo_uri, name, Cipher(s.encryption_key))
    store.ensure_indexes()
    experiments.register(store)
    try:
        yield store
    finally:
        store.db.client.drop_database(name)
        store.db.client.close()


def pools(bench: Bench, plan: Plan) -> list[Figure]:
    levels, passes = LEVELS[plan.name], PASSES[plan.name]
    figures: list[Figure] = []
    with _database(bench) as store:
        env = {"JOBYARD_MONGO_DB": store.db.name, "JOBYARD_WORKSPACE_STORAGE_CHECK": "false"}
        for name, environment in pool_targets.POOLS.items():
            started = time.perf_counter()
            with environment(Place(bench, bench.work / "pools" / name, env)) as pool:
                if pool is not None:
                    figures += _Run.of(bench, store, pool, passes).measure(levels)
            print(f"[bench] pools: {name} {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return figures


@dataclass
class _Run:
    """One pool measured: its jobs, its backend, and what each level showed."""

    bench: Bench
    store: Store
    pool: Pool
    ctx: Context
    session: Any
    fields: dict[str, Any]
    passes: int
    ids: list[str] = field(default_factory=list)
    target: str = ""
    calls: Meter = field(default_factory=Meter)  # at the Backend interface
    wire: Meter = field(default_factory=Meter)  # HTTP requests, SSH execs, SFTP sessions
    batches: list[dict[str, Any]] = field(default_factory=list)
    levels: dict[int, dict[str, Any]] = field(default_factory=dict)
    cancel_s: float = 0.0
    left: int = 0  # jobs still active after the cancel: the pool's teardown ends their runs

    @classmethod
    def of(cls, bench: Bench, store: Store, pool: Pool, passes: int) -> _Run:
        app = create_app(pool.settings, store=store)
        session = conftest.logins(app.test_client(), store)(ORG, admin=True)
        ctx = Context(pool.settings, store, bench.redis, StubCelery())
        return cls(bench, store, pool, ctx, session, pool.prepare(session), passes)

    def measure(self, levels: tuple[int, ...]) -> list[Figure]:
        try:
            for level in levels:
                jobs = self._dispatch(self._create(level - len(self.ids)))
                self._settle(level)  # jobyard's runs up before the raw ones start
                self._raw_batch(jobs)
                self._reconcile(level)
            self.cancel_s, self.left = self._cancel()
        finally:  # cut short (an error, Ctrl-C): the pool's teardown ends every run at once
            self.ctx.resources.close()
        return self._figures()

    # -- jobs --------------------------------------------------------------------------

    def _create(self, count: int) -> list[str]:
        """``count`` Pending jobs through the API. What its dispatches put in Redis (the
        queue's messages, whatever else enqueueing keeps there) is removed: no worker
        runs here, this process dispatches the jobs itself."""
        before = set(self.bench.redis.scan_iter())
        ids = []
        for _ in range(count):
            body = {
                **experiments.job_body(experiments.SLEEP, f"pool-{uuid.uuid4().hex[:8]}"),
                **self.fields,
            }
            response = self.session.call("POST", "jobs", json=body)
            assert response.status_code == 201, response.json
            ids.append(str(response.json["id"]))
        queue = queue_for(str(self._job(ids[0])["backend"]))
        self.bench.redis.delete(queue, *(set(self.bench.redis.scan_iter()) - before))
        return ids

    def _job(self, job_id: str) -> dict[str, Any]:
        doc = self.store.jobs.find(job_id)
        assert doc is not None, job_id
        return dict(doc)

    def _handles(self) -> list[Handle]:
        docs = self.store.db.jobs.find({"_id": {"$in": self.ids}}, {"handle": 1})
        return [Handle.from_doc(d["handle"]) for d in docs if d.get("handle")]

    def _first(self, job_id: str) -> None:
        """The first job and raw call untimed: connections made, clients built, and the
        raw client shown the body jobyard sent."""
        self._submitted(job_id, engine.dispatch(self.ctx, job_id))
        doc = self._job(job_id)
        self.target = str(doc["backend"])
        backend = self.ctx.backend(self.target)
        for name in ("poll", "read_output", "submit"):
            self.calls.watch(backend, name)
        self.pool.wire(backend, self.wire)
        self.pool.raw.learn(Handle.from_doc(doc["handle"]))
        self.pool.raw.submit(0)
        self.pool.raw.remove()  # it would hold one of SLURM's slots

    def _submitted(self, job_id: str, outcome: str) -> None:
        if outcome != "submitted":
            doc = self._job(job_id)
            message = (doc.get("job_details") or {}).get("detailed_status", {}).get("message")
            raise RuntimeError(f"{self.pool.name}: dispatch of {job_id} {outcome}: {message}")

    def _reset(self) -> None:
        self.calls.take()
        self.wire.take()

    def _dispatch(self, ids: list[str]) -> int:
        """Dispatch ``ids`` (the very first untimed); returns how many were timed."""
        if not self.ids:
            self._first(ids[0])
            self.ids.append(ids.pop(0))
        self._reset()
        start = time.perf_counter()
        for job_id in ids:
            self._submitted(job_id, engine.dispatch(self.ctx, job_id))
        seconds = time.perf_counter() - start
        (backend, backend_ms), (wire, wire_ms) = self.calls.take(), self.wire.take()
        calls = {"backend": backend, "wire": wire, "backend_ms": backend_ms, "wire_ms": wire_ms}
        self.ids += ids
        self.batches.append({"jobs": len(ids), "jobyard_s": seconds, "calls_in_batch": calls})
        return len(ids)

    def _raw_batch(self, count: int) -> None:
        """As many raw submits, then their runs removed: jobyard's reconcile must see
        jobyard's runs only."""
        start = time.perf_counter()
        for i in range(count):
            self.pool.raw.submit(len(self.ids) + i)
        self.batches[-1]["raw_s"] = time.perf_counter() - start
        self.pool.raw.remove()
        time.sleep(min(QUIET_SECONDS_MAX, QUIET_SECONDS_PER_RUN * count))

    # -- reconcile ---------------------------------------------------------------------

    def _statuses(self) -> collections.Counter[str]:
        docs = self.store.db.jobs.find({"_id": {"$in": self.ids}}, {"status": 1})
        return collections.Counter(str(d["status"]) for d in docs)

    def _settle(self, level: int) -> None:
        """Untimed passes until every run the backend can start runs: the timed passes
        then see a steady state, as most ticks of a busy pool do."""
        capacity = self.pool.capacity
        running = level if capacity is None else min(level, capacity)
        deadline = time.perf_counter() + SETTLE_SECONDS
        while True:
            engine.reconcile(self.ctx, self.target)
            found = self._statuses()
            if found[JobState.RUNNING.value] >= running:
                break
            failed = sum(n for s, n in found.items() if s not in ACTIVE)
            if failed or time.perf_counter() > deadline:
                raise RuntimeError(f"{self.pool.name}: {level} jobs did not settle: {found}")
            time.sleep(0.2)
        self.levels[level] = {"statuses": dict(found)}

    def _reconcile(self, level: int) -> None:
        times, cpu, seen, meters = [], [], 0, (self.calls, self.wire)
        self._reset()
        for _ in range(self.passes):
            start, start_cpu = time.perf_counter(), time.process_time()
            seen = engine.reconcile(self.ctx, self.target)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        (calls, calls_ms), (wire, wire_ms) = (_per_pass(m.take(), self.passes) for m in meters)
        if seen != level:
            raise RuntimeError(f"{self.pool.name}: reconcile saw {seen} jobs, not {level}")
        handles, raw = self._handles(), []
        for _ in range(self.passes):
            start = time.perf_counter()
            raw_seen = self.pool.raw.poll(handles)
            raw.append(time.perf_counter() - start)
        self.levels[level].update(
            reconcile_ms=median(times) * 1000,
            reconcile_ms_all=[t * 1000 for t in times],
            reconcile_cpu_ms=median(cpu) * 1000,
            backend_calls=calls,  # per pass, as the milliseconds
            backend_ms=calls_ms,
            wire_calls=wire,
            wire_ms=wire_ms,
            raw_poll_ms=median(raw) * 1000,
            raw_poll_seen=raw_seen,
        )

    def _active(self) -> list[str]:
        query = {"_id": {"$in": self.ids}, "status": {"$in": ACTIVE}}
        return [str(d["_id"]) for d in self.store.db.jobs.find(query, {"_id": 1})]

    def _cancel(self) -> tuple[float, int]:
        """Cancel every job and reconcile until none is active: the runs end as users'
        runs do. Returns (seconds, jobs still active: the pool's teardown ends them).

        Runs the backend holds queued are ended on the backend first (``Pool.unqueue``):
        jobyard's stop cannot end those on SLURM in time (see ``pool_targets``)."""
        start = time.perf_counter()
        for job_id in self._active():
            with contextlib.suppress(Exception):  # a job that ended meanwhile
                self.store.jobs.request_cancel(ORG, job_id)
        self.pool.unqueue()
        while self.target and self._active() and time.perf_counter() - start < CANCEL_SECONDS:
            engine.reconcile(self.ctx, self.target)
            time.sleep(0.2)
        return time.perf_counter() - start, len(self._active())

    # -- figures -----------------------------------------------------------------------

    def _figures(self) -> list[Figure]:
        name, raw = self.pool.name, self.pool.raw
        jobs = sum(b["jobs"] for b in self.batches)
        ours = jobs / sum(b["jobyard_s"] for b in self.batches)
        theirs = jobs / sum(b["raw_s"] for b in self.batches)
        common = {"cancel_s": self.cancel_s, "active_after_cancel": self.left, **self.pool.notes}
        figures = [
            Figure(
                f"{name} pool: dispatch, one process ({jobs} `sleep 600` jobs)",
                "jobs/s",
                ours,
                theirs,
                raw.submit_name,
                "(info: sizes the pool)",
                None,
                {"target": self.target, "batches": self.batches, **common},
            )
        ]
        shapes = {tuple(sorted(r["backend_calls"].items())) for r in self.levels.values()}
        constant = len(shapes) == 1
        for level, row in self.levels.items():
            figures.append(
                Figure(
                    f"{name} pool: reconcile pass at {_watched(level, row)} ({_calls(row)})",
                    "ms",
                    row["reconcile_ms"],
                    row["raw_poll_ms"],
                    raw.poll_name,
                    "backend calls per pass constant",
                    constant,
                    {"level": level, "passes": self.passes, **row, **common},
                )
            )
        return figures


def _per_pass(
    taken: tuple[dict[str, int], dict[str, float]], passes: int
) -> tuple[dict[str, float], dict[str, float]]:
    calls, ms = taken
    return {k: n / passes for k, n in calls.items()}, {k: v / passes for k, v in ms.items()}


def _watched(level: int, row: dict[str, Any]) -> str:
    """The jobs a pass looked at; on SLURM, most of them wait in its queue (one node)."""
    running = row["statuses"].get(JobState.RUNNING.value, 0)
    if running == level:
        return f"{level} running jobs"
    return f"{level} jobs ({running} running, {level - running} queued on the backend)"


def _calls(row: dict[str, Any]) -> str:
    """The calls of one pass: at the backend's interface, then on the wire."""

    def text(calls: dict[str, float]) -> str:
        return " + ".join(f"{n:g} {c}" for c, n in sorted(calls.items())) or "none"

    wire = row["wire_calls"]
    return f"per pass: {text(row['backend_calls'])}; wire: {text(wire) if wire else 'local'}"
