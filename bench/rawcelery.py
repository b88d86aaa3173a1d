"""The raw-Celery baseline: one task that runs a command, on the same Redis,
with jobyard's own Celery settings (acks late, prefetch 1, no results), so the
difference measured is what jobyard adds, not a different Celery setup.

Worker: ``python -m celery -A bench.rawcelery worker -Q bench_raw -c 2``
with ``BENCH_BROKER_URL`` set.
"""

from __future__ import annotations

import os
import subprocess

import redis
from celery import Celery

QUEUE = "bench_raw"
TASK = "bench.raw.run"


def create(broker_url: str) -> Celery:
    celery = Celery("bench_raw", broker=broker_url)
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return celery


app = create(os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0"))
_counter: list[redis.Redis] = []


@app.task(name=TASK)  # type: ignore[untyped-decorator]
def run(argv: list[str], counter: str) -> None:
    """Run the command, then count it done (the bench waits on the counter)."""
    subprocess.run(argv, check=True)
    if not _counter:  # one connection per pool process, made after the fork
        _counter.append(redis.Redis.from_url(app.conf.broker_url))
    _counter[0].incr(counter)
