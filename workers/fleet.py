"""Workers and queues for operators.

Each worker's parent process reports a heartbeat into MongoDB every
``JOBYARD_WORKER_HEARTBEAT_SECONDS``: who it is, the queues it consumes, its concurrency,
the tasks running now (with the job or backend each serves), tasks done, when it
registered, was last active and last reported, and the machine's CPU and memory (and GPUs
through NVML when ``nvidia-ml-py`` is installed and a GPU is present). The tick samples
every queue's length and its jobs' average wait for seed 004's ``queue_metrics``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from jobyard.backends.registry import queue_for
from jobyard.store import Store
from jobyard.workers.celery_app import QUEUES
from jobyard.workers.turns import broker_lists

logger = logging.getLogger(__name__)
SAMPLE_SECONDS = 30.0  # one queue sample per interval, whatever the number of ticks
SAMPLES_KEPT = 7 * 86_400.0


def machine() -> dict[str, Any]:
    """CPU load and memory of this machine; GPU usage where NVML answers."""
    stats: dict[str, Any] = {}
    try:
        stats["cpu_usage"] = round(100 * os.getloadavg()[0] / (os.cpu_count() or 1), 1)
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as info:
            mem = {k: int(v.split()[0]) * 1024 for k, v in (line.split(":", 1) for line in info)}
        stats["memory_used"] = mem["MemTotal"] - mem.get("MemAvailable", mem.get("MemFree", 0))
        stats["memory_free"] = mem.get("MemAvailable", mem.get("MemFree", 0))
    except (OSError, KeyError, ValueError):
        pass
    stats.update(_gpus())
    return stats


def _gpus() -> dict[str, Any]:
    try:
        import pynvml  # type: ignore[import-not-found]  # nvidia-ml-py, optional
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            usage = pynvml.nvmlDeviceGetUtilizationRates(handle)
            gpus.append({"gpu_usage": usage.gpu, "gpu_memory_used": memory.used})
        return {"gpus": gpus}
    except Exception:  # no GPU or no driver: nothing to report
        return {}


class Heartbeat(threading.Thread):
    """The reporting thread of one worker's parent process."""

    def __init__(self, store: Store, worker_id: str, static: Mapping[str, Any], every: float):
        super().__init__(name="jobyard-heartbeat", daemon=True)
        self._store = store
        self._id = worker_id
        self._static = dict(static)
        self._every = every
        self._stop = threading.Event()
        self._seen: tuple[Any, ...] = ()
        self._last_activity = time.time()

    def report(self) -> None:
        from celery.worker import state

        running = []
        for request in list(state.active_requests):
            args = getattr(request, "args", None) or []
            about = str(args[0]) if args else None
            running.append({"task_id": request.id, "task": request.name, "about": about})
        done = sum(state.total_count.values())
        now = time.time()
        seen = (tuple(sorted(r["task_id"] for r in running)), done)
        if seen != self._seen:
            self._seen, self._last_activity = seen, now
        fields = {
            **self._static,
            "running": running,
            "tasks_done": done,
            "last_activity_time": self._last_activity,
            "last_report_time": now,
            "machine": machine(),
        }
        self._store.fleet.report(self._id, fields)

    def run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.report()
            except Exception as e:  # MongoDB away: report again next time
                logger.warning("worker heartbeat not recorded: %s", e)

    def stop(self) -> None:
        self._stop.set()


def install(app: Any, settings: Any) -> None:
    """Start the heartbeat when the worker is ready; remove its report at shutdown."""
    from celery import signals

    from jobyard.workers.context import context_for

    beats: list[Heartbeat] = []

    @signals.worker_ready.connect(weak=False)
    def _ready(sender: Any = None, **_: Any) -> None:
        controller = getattr(sender, "controller", None)
        queues = sorted(q.name for q in getattr(sender.task_consumer, "queues", []))
        static = {
            "hostname": socket.gethostname(),
            "name": getattr(sender, "hostname", ""),
            "pid": os.getpid(),
            "queues": queues,
            "concurrency": getattr(controller, "concurrency", None),
            "register_time": time.time(),
        }
        store = context_for(app).store
        beat = Heartbeat(
            store, f"{static['name']}:{os.getpid()}", static, settings.worker_heartbeat_seconds
        )
        beat.report()
        beat.start()
        beats.append(beat)

    @signals.worker_shutdown.connect(weak=False)
    def _shutdown(**_: Any) -> None:
        for beat in beats:
            beat.stop()
            try:
                context_for(app).store.fleet.remove(beat._id)  # noqa: SLF001
            except Exception as e:  # the report ages out instead
                logger.warning("worker report not removed: %s", e)


def backlogs(redis: Any, queues: list[str], now: float) -> dict[str, dict[str, Any]]:
    """Per queue, the messages waiting in its broker lists (turns and the rest) and the
    age of the oldest (the ``sent_at`` header jobyard's messages carry; a list's far end
    is its oldest). One pipelined round trip for every queue."""
    pipe = redis.pipeline(transaction=False)
    for queue in queues:
        for name in broker_lists(queue):
            pipe.llen(name)
            pipe.lindex(name, -1)
    found = iter(pipe.execute())
    out = {}
    for queue in queues:
        pairs = [(next(found), next(found)) for _ in broker_lists(queue)]
        ages = [a for a in (_age(raw, now) for _, raw in pairs if raw) if a is not None]
        out[queue] = {
            "messages": sum(int(n) for n, _ in pairs),
            "oldest_message_age_seconds": max(ages) if ages else None,
        }
    return out


def _age(raw: bytes, now: float) -> float | None:
    try:
        sent = json.loads(raw).get("headers", {}).get("sent_at")
        return round(now - float(sent), 3) if sent else None
    except (ValueError, TypeError, AttributeError):
        return None


def queues(store: Store, redis: Any, now: float, org: str | None = None) -> list[dict[str, Any]]:
    """Every queue: its broker backlog (not for an org's view: messages belong to no org)
    and the jobs waiting for it, with the next one and the average wait."""
    by_queue: dict[str, list[dict[str, Any]]] = {q: [] for q in QUEUES}
    for job in store.fleet.waiting(org):
        by_queue.setdefault(queue_for(job["backend"]), []).append(job)
    broker = backlogs(redis, sorted(by_queue), now) if org is None else {}
    out = []
    for name, waiting in sorted(by_queue.items()):
        waits = [now - float(j.get("enqueued_at") or now) for j in waiting]
        entry: dict[str, Any] = {
            "name": name,
            "jobs_waiting": len(waiting),
            "avg_waiting_seconds": round(sum(waits) / len(waits), 3) if waits else 0.0,
            "next_job": (
                {"id": waiting[0]["_id"], "waiting_seconds": round(waits[0], 3)}
                if waiting
                else None
            ),
        }
        if org is None:
            entry.update(broker[name])
        out.append(entry)
    return out


def sample(store: Store, redis: Any, now: float) -> int:
    """Record one sample per queue (the tick calls this; at most one per SAMPLE_SECONDS)."""
    if now - store.fleet.last_sample_at() < SAMPLE_SECONDS:
        return 0
    rows = [
        {
            "queue": q["name"],
            "at": now,
            "length": q["messages"],
            "avg_wait": q["avg_waiting_seconds"],
        }
        for q in queues(store, redis, now)
    ]
    store.fleet.record(rows)
    store.fleet.trim_samples(now - SAMPLES_KEPT)
    return len(rows)
