"""Prometheus metrics (``prometheus_client``) of the API and the workers.

Both fork (gunicorn's and Celery's prefork pools), so with ``JOBYARD_METRICS_PORT`` /
``JOBYARD_WORKER_METRICS_PORT`` set they run in ``prometheus_client``'s multiprocess mode:
``runtime.metrics_dir`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before
anything imports the library, every child writes its samples there, and the parent serves
the sum.

What a counter or histogram cannot hold (how many jobs are in each state now, how long
each queue is) is read at scrape time by ``StateCollector``, with a connection of its own
per scrape, in the worker's parent process only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from jobyard.backends import registry
from jobyard.schemas.job import JobState
from jobyard.schemas.settings import Settings
from jobyard.workers import fleet

MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"
LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STARTUP = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)

HTTP_REQUESTS = Counter(
    "jobyard_http_requests",
    "API requests by route, method and status",
    ["route", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "jobyard_http_request_seconds", "API request latency", ["route", "method"], buckets=LATENCY
)
SUBMIT_TO_RUNNING = Histogram(
    "jobyard_submit_to_running_seconds",
    "From a job's creation to its run seen Running",
    ["backend"],
    buckets=STARTUP,
)
RECONCILE_SECONDS = Histogram(
    "jobyard_reconcile_seconds", "One reconcile pass over a backend", ["backend"], buckets=LATENCY
)
BACKEND_ERRORS = Counter(
    "jobyard_backend_errors", "Backend calls that failed", ["backend", "operation"]
)
for _kind in registry.available():  # every series exists from the start, at 0
    for _operation in ("submit", "poll", "stop"):
        BACKEND_ERRORS.labels(_kind, _operation)
EVENTS_INGESTED = Counter("jobyard_events_ingested", "Status events stored")
LOG_BYTES_INGESTED = Counter("jobyard_log_bytes_ingested", "Log bytes stored")


def child_exited(pid: int) -> None:
    """A forked child is gone: its live gauges must not be summed any more."""
    if os.environ.get(MULTIPROC):
        mark_process_dead(pid)


class StateCollector(Collector):
    """Jobs by state and backend, the broker backlog per queue and each worker's heartbeat
    age, read per scrape."""

    def __init__(self, settings: Settings, queues: list[str]) -> None:
        self._settings = settings
        self._queues = queues

    def collect(self) -> Iterator[Any]:
        from pymongo import MongoClient
        from redis import Redis

        jobs = GaugeMetricFamily(
            "jobyard_jobs", "Jobs by state and backend", labels=["state", "backend"]
        )
        client: MongoClient[dict[str, Any]] = MongoClient(
            self._settings.mongo_uri, serverSelectionTimeoutMS=2000
        )
        try:
            # one group per backend: nx-27017 groups by a single field only
            coll = client[self._settings.mongo_db]["jobs"]
            found: dict[tuple[str, str], int] = {}
            for backend in coll.distinct("backend"):
                by_state = [
                    {"$match": {"backend": backend}},
                    {"$group": {"_id": "$status", "n": {"$sum": 1}}},
                ]
                for doc in coll.aggregate(by_state):
                    found[(str(doc["_id"]), str(backend))] = int(doc["n"])
            reports = list(
                client[self._settings.mongo_db]["workers"].find({}, {"last_report_time": 1})
            )
        finally:
            client.close()
        ages = GaugeMetricFamily(
            "jobyard_worker_heartbeat_age_seconds",
            "Seconds since each worker last reported (workers.fleet); lost ones age on",
            labels=["worker"],
        )
        now = time.time()
        for report in reports:
            ages.add_metric([str(report["_id"])], now - float(report.get("last_report_time") or 0))
        backends = sorted({b for _, b in found} or {"process"})
        for state in JobState:
            for backend in backends:
                jobs.add_metric([state.value, str(backend)], found.get((state.value, backend), 0))
        yield jobs
        backlog = GaugeMetricFamily(
            "jobyard_queue_backlog", "Messages waiting in each broker queue", labels=["queue"]
        )
        broker = Redis.from_url(str(self._settings.redis_url), socket_timeout=2)
        try:
            for queue, lists in fleet.backlogs(broker, self._queues, now).items():
                backlog.add_metric([queue], float(lists["messages"]))
        finally:
            broker.close()
        yield backlog
        yield ages


def serve(port: int, host: str, state: StateCollector | None = None) -> None:
    """The /metrics endpoint of this process tree (the children's samples too)."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC):
        MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    if state is not None:
        registry.register(state)
    start_http_server(port, addr=host, registry=registry)
