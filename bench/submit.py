"""Submission figures: POST /jobs throughput, trivial jobs end to end, and
submit -> Running latency, each against its raw baseline where one exists."""

from __future__ import annotations

import copy
import itertools
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench import experiments, rawcelery, roundtrips
from bench.client import Api
from bench.plan import Plan
from bench.servers import Bench, Proc
from bench.stats import Figure, concurrent_rate, percentile, wait_until
from jobyard.schemas.job import JobState

_names = itertools.count()
# Every job persists at least four writes (create, claim, handle, outcome) that the raw
# task does not; bench/README.md has the breakdown.
E2E_TARGET = 0.25
WORKER_CONCURRENCY = 2  # both pools: jobyard's worker and the raw baseline's


def _unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}-{uuid.uuid4().hex[:6]}"


def post_jobs(api: Api, count: int, clients: int, experiment: Any) -> list[str]:
    ids: list[str] = []

    def one(_: int) -> None:
        status, body = api.call(
            "POST", api.org_path("jobs"), experiments.job_body(experiment, _unique("j"))
        )
        if status != 201:
            raise RuntimeError(f"POST /jobs: {status} {body}")
        ids.append(body["id"])

    concurrent_rate(one, count, clients)
    return ids


def _purge(bench: Bench, *queues: str) -> None:
    bench.redis.delete(*queues)


def round_trips(bench: Bench) -> Figure:
    """MongoDB and Redis round trips per accepted job, against the raw baseline's."""
    trips = roundtrips.per_job(bench)
    ours, theirs = trips["jobyard"], trips["baseline"]
    total = ours["mongodb_per_job"] + ours["redis_per_job"]
    raw = theirs["mongodb_per_job"] + theirs["redis_per_job"]
    return Figure(
        "POST /jobs round trips (MongoDB + Redis)",
        "per job",
        total,
        raw,
        "raw insert_one + apply_async",
        "no more than the baseline",
        total <= raw,
        trips,
    )


def post_throughput(bench: Bench, api: Api, plan: Plan) -> Figure:
    """Jobs accepted per second by POST /jobs (no worker running: messages wait
    in Redis) against one raw insert_one + one raw apply_async per job. ``api``
    is an org of its own: its jobs are deleted afterwards."""
    raw = rawcelery.create(str(bench.settings.redis_url))
    post_jobs(api, plan.clients, plan.clients, experiments.TRUE)  # warm the connections
    template = bench.store.db.jobs.find_one({"org": api.org})
    assert template is not None, "the warm-up created no job"
    raw_coll = bench.store.db["bench_raw_jobs"]

    def baseline_one(i: int) -> None:
        doc = copy.deepcopy(template)
        doc["_id"] = str(uuid.uuid4())
        raw_coll.insert_one(doc)
        raw.send_task(rawcelery.TASK, args=[["true"], "unused"], queue="bench_post")

    ours, theirs = [], []
    for _ in range(plan.rounds):
        start = time.perf_counter()
        post_jobs(api, plan.post_jobs, plan.clients, experiments.TRUE)
        ours.append(plan.post_jobs / (time.perf_counter() - start))
        theirs.append(concurrent_rate(baseline_one, plan.post_jobs, plan.clients))
        _purge(bench, "process", "bench_post")
    raw.close()
    # Nothing may run these later: the beat's tick would dispatch every Pending job
    # left in MongoDB (as it should: Redis is disposable) during the next phases.
    bench.store.db.jobs.delete_many({"org": api.org})
    return Figure(
        "POST /jobs accepted",
        "jobs/s",
        max(ours),
        max(theirs),
        "raw insert_one + apply_async",
        "≥ 0.5× baseline",
        max(ours) >= 0.5 * max(theirs),
        {
            "clients": plan.clients,
            "jobs_per_round": plan.post_jobs,
            "jobyard_rounds": ours,
            "baseline_rounds": theirs,
        },
    )


def _count(bench: Bench, ids: list[str], *states: JobState) -> int:
    return bench.store.db.jobs.count_documents(
        {"_id": {"$in": ids}, "status": {"$in": [s.value for s in states]}}
    )


def reached(bench: Bench, ids: list[str], *states: JobState) -> Callable[[], bool]:
    """A check: every job of ``ids`` is in one of ``states``."""
    wanted = list(ids)
    return lambda: _count(bench, wanted, *states) >= len(wanted)


def start_raw_worker(bench: Bench) -> Proc:
    from bench.servers import wait_for_celery

    env = bench.env(BENCH_BROKER_URL=str(bench.settings.redis_url))
    argv = [
        "-m",
        "celery",
        "-A",
        "bench.rawcelery",
        "worker",
        "-Q",
        rawcelery.QUEUE,
        "-c",
        str(WORKER_CONCURRENCY),
        "--loglevel",
        "WARNING",
    ]
    proc = bench.start("raw-worker", argv, env)
    wait_for_celery(bench.redis, proc)
    return proc


def _jobyard_round(bench: Bench, api: Api, jobs: int, clients: int) -> tuple[float, int]:
    """(jobs/s from the first POST to the last Done, jobs that ended in Error)."""
    start = time.perf_counter()
    ids = post_jobs(api, jobs, clients, experiments.TRUE)
    wait_until(lambda: not _any_active(bench, api.org), 300, "trivial jobs", 0.05)
    return jobs / (time.perf_counter() - start), _count(bench, ids, JobState.ERROR)


def _any_active(bench: Bench, org: str) -> bool:
    """Whether a job of ``org`` is still on its way: one indexed lookup, so that polling
    every 50 ms costs the server under test next to nothing (a count over the round's
    ids made nx-27017 load every one of them 20 times a second: 40% of its time)."""
    found = bench.store.db.jobs.find_one({"active": {"$eq": True}, "org": org}, {"_id": 1})
    return found is not None


def _raw_round(bench: Bench, raw: Any, tasks: int) -> float:
    counter = f"bench:done:{uuid.uuid4().hex}"
    start = time.perf_counter()
    for _ in range(tasks):
        raw.send_task(rawcelery.TASK, args=[["true"], counter], queue=rawcelery.QUEUE)

    def counted() -> bool:
        return int(bench.redis.get(counter) or 0) >= tasks

    wait_until(counted, 300, "raw tasks", 0.01)
    return tasks / (time.perf_counter() - start)


def end_to_end(bench: Bench, api: Api, plan: Plan) -> Figure:
    """Trivial jobs (`true`) from POST to Done, against raw Celery tasks running
    `true` and counting themselves done. Needs a beat worker and a raw worker;
    one small unrecorded round of each first warms their pool processes."""
    raw = rawcelery.create(str(bench.settings.redis_url))
    _jobyard_round(bench, api, 4, 2)
    _raw_round(bench, raw, 8)
    ours, theirs, errors = [], [], 0
    for _ in range(plan.rounds):
        rate, failed = _jobyard_round(bench, api, plan.e2e_jobs, plan.clients)
        ours.append(rate)
        errors += failed
        theirs.append(_raw_round(bench, raw, plan.e2e_raw_tasks))
    raw.close()
    return Figure(
        "trivial jobs end to end (`true`)",
        "jobs/s",
        max(ours),
        max(theirs),
        "raw Celery task running `true`",
        f"≥ {E2E_TARGET}× baseline",
        max(ours) >= E2E_TARGET * max(theirs),
        {
            "jobs_per_round": plan.e2e_jobs,
            "raw_tasks_per_round": plan.e2e_raw_tasks,
            "jobyard_rounds": ours,
            "baseline_rounds": theirs,
            "jobs_in_error": errors,
        },
    )


def submit_to_running(bench: Bench, api: Api, plan: Plan) -> Figure:
    """One job at a time (`sleep 1`): from just before POST to the moment the
    job document says Running, polled every 5 ms."""
    samples: list[float] = []
    for _ in range(plan.latency_samples):
        start = time.perf_counter()
        [job_id] = post_jobs(api, 1, 1, experiments.SHORT)

        def running(job_id: str = job_id) -> bool:
            doc = bench.store.db.jobs.find_one({"_id": job_id}, {"status": 1}) or {}
            if doc.get("status") in (JobState.ERROR.value, JobState.CANCELED.value):
                raise RuntimeError(f"job {job_id} ended {doc['status']} before running")
            return doc.get("status") in (JobState.RUNNING.value, JobState.DONE.value)

        wait_until(running, 60, "submit -> Running", 0.005)
        samples.append((time.perf_counter() - start) * 1000)
    p50 = percentile(samples, 50)
    return Figure(
        "submit → Running latency p50",
        "ms",
        p50,
        None,
        "",
        "p50 < 200 ms",
        p50 < 200,
        {
            "p50_ms": p50,
            "p99_ms": percentile(samples, 99),
            "max_ms": max(samples),
            "samples": len(samples),
        },
    )
