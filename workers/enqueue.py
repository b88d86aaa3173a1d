"""The API's only entry into the workers: send "look at job X" messages.

A message that cannot be sent loses nothing: the job is already in MongoDB
as Pending, and the periodic tick dispatches it again. Dispatches go through the
orgs' lines (``workers.turns``) so that orgs take turns on every queue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import redis

from jobyard.backends.registry import queue_for
from jobyard.workers import logs
from jobyard.workers.turns import TURN_PRIORITY, Turns

logger = logging.getLogger(__name__)

DISPATCH = "jobyard.dispatch"  # one named job: retries, and messages sent before turns
DISPATCH_TURN = "jobyard.dispatch_turn"
RECONCILE = "jobyard.reconcile"
TICK = "jobyard.tick"
STAGE = "jobyard.stage"


def _headers() -> dict[str, Any]:
    """What the message carries besides its arguments: when it was sent (the queue view's
    oldest message age) and the request id (``workers.logs``)."""
    rid = logs.current("request_id")
    return {"sent_at": time.time(), **({"request_id": rid} if rid else {})}


def dispatch(celery: Any, client: redis.Redis, job: Mapping[str, Any]) -> bool:
    """Put the job in its org's line on its backend's queue and send a turn for it.
    ``job`` needs ``_id``, ``org``, ``backend``, ``created_on`` (and ``priority_rank``)."""
    queue = queue_for(str(job["backend"]))
    headers = _headers()
    try:
        Turns(client).enter(queue, job, headers.get("request_id"))
        celery.send_task(
            DISPATCH_TURN, args=[queue], queue=queue, headers=headers, priority=TURN_PRIORITY
        )
    except Exception as e:  # broker down: the tick re-sends it from MongoDB
        logger.warning("job %s: dispatch not enqueued (%s); the tick will retry", job["_id"], e)
        return False
    return True


def dispatch_now(celery: Any, job_id: str, backend: str) -> bool:
    """Dispatch this job, not in a line: the rest of a dispatch that had its turn (after
    its datasets were staged). False when the broker is down: the tick asks again."""
    try:
        celery.send_task(DISPATCH, args=[job_id], queue=queue_for(backend), headers=_headers())
    except Exception as e:  # broker down: the tick re-sends it from MongoDB
        logger.warning("job %s: dispatch not enqueued (%s); the tick will retry", job_id, e)
        return False
    return True


def stage(celery: Any, job_id: str, backend: str) -> bool:
    """Ask for the job's datasets to be copied, on its backend's queue (the workers there
    see its staging directory). False when the broker is down: the tick asks again."""
    try:
        celery.send_task(STAGE, args=[job_id], queue=queue_for(backend), headers=_headers())
    except Exception as e:  # broker down: the tick dispatches the job again from MongoDB
        logger.warning("job %s: staging not enqueued (%s); the tick will retry", job_id, e)
        return False
    return True
