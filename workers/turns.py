"""Dispatch takes turns between orgs.

A Celery queue is FIFO: behind one org's 10,000 dispatch messages another org's one job
would wait for all of them. So a dispatch message names no job. Sending one first
enters the job in its org's line for that queue (a Redis sorted set: priority, then
age); the worker that takes a message takes the next org in a ring and the first job of
that org's line. One entry and one message per dispatch keeps the counts equal; the
ring makes the orgs take turns, the sorted set keeps high before normal before low
within an org, quota or not.

Both scripts are atomic, and entering is idempotent (a job is in its line once however
often it is sent), so a message sent twice only finds an empty line. A job taken by a
worker that dies before dispatching it is still Pending in MongoDB: the tick enters it
again, as it re-sends any dispatch lost with Redis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

PREFIX = "jobyard:turns:"
# Turns are sent at this priority, everything else at 0. Kombu's Redis transport keeps a
# list per priority step, named ``<queue>\x06\x16<step>`` (0: just ``<queue>``), and
# workers pop the 0 lists first: a reconcile, a stage or an upload never waits behind a
# backlog of thousands of dispatches. ``celery_app`` sets the steps to (0, TURN_PRIORITY).
TURN_PRIORITY = 9
PRIORITY_STEPS = (0, TURN_PRIORITY)


def turn_list(queue: str) -> str:
    """The broker list holding ``queue``'s turns (kombu's name for its priority list)."""
    return f"{queue}\x06\x16{TURN_PRIORITY}"


def broker_lists(queue: str) -> tuple[str, str]:
    """Every broker list of ``queue``: its other messages, then its turns."""
    return queue, turn_list(queue)


_RANKS = 3  # schemas.job.PRIORITIES: low 0, normal 1, high 2
_AGE_SPAN = 10**13  # milliseconds since 1970 stay below it until the year 2286

# KEYS: ring, ring set, the org's line, request ids. ARGV: org, job, score, request id.
_ENTER = """
redis.call('zadd', KEYS[3], 'NX', ARGV[3], ARGV[2])
if ARGV[4] ~= '' then redis.call('hset', KEYS[4], ARGV[2], ARGV[4]) end
if redis.call('sadd', KEYS[2], ARGV[1]) == 1 then redis.call('rpush', KEYS[1], ARGV[1]) end
return 1
"""

# KEYS: ring, ring set, request ids. ARGV: the prefix of the queue's lines.
_TAKE = """
for _ = 1, redis.call('llen', KEYS[1]) do
  local org = redis.call('lpop', KEYS[1])
  local line = ARGV[1] .. org
  local first = redis.call('zpopmin', line)
  if first[1] then
    if redis.call('zcard', line) > 0 then
      redis.call('rpush', KEYS[1], org)
    else
      redis.call('srem', KEYS[2], org)
    end
    local rid = redis.call('hget', KEYS[3], first[1]) or ''
    redis.call('hdel', KEYS[3], first[1])
    return {first[1], rid}
  end
  redis.call('srem', KEYS[2], org)
end
return false
"""


@dataclass(frozen=True)
class Turn:
    job_id: str
    request_id: str | None


def score(job: Mapping[str, Any]) -> int:
    """Place in the org's line: higher priority first, then older first."""
    rank = int(job.get("priority_rank", 1))
    return (_RANKS - 1 - rank) * _AGE_SPAN + int(float(job["created_on"]) * 1000)


def _keys(queue: str) -> tuple[str, str, str, str]:
    base = f"{PREFIX}{queue}:"
    return base + "ring", base + "orgs", base + "line:", base + "request_ids"


class Turns:
    """The lines of every queue, on one Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._enter = client.register_script(_ENTER)
        self._take = client.register_script(_TAKE)

    def enter(self, queue: str, job: Mapping[str, Any], request_id: str | None) -> None:
        ring, orgs, lines, rids = _keys(queue)
        org = str(job["org"])
        self._enter(
            keys=[ring, orgs, lines + org, rids],
            args=[org, str(job["_id"]), score(job), request_id or ""],
        )

    def take(self, queue: str) -> Turn | None:
        """The next job whose turn it is on ``queue``, out of its line; None if none."""
        ring, orgs, lines, rids = _keys(queue)
        found = self._take(keys=[ring, orgs, rids], args=[lines])
        if not found:
            return None
        job_id, rid = (v.decode() if isinstance(v, bytes) else str(v) for v in found)
        return Turn(job_id, rid or None)

    def in_line(self, queue: str, jobs: Sequence[Mapping[str, Any]]) -> set[str]:
        """Which of ``jobs`` are still in their line on ``queue`` (one pipelined call)."""
        _, _, lines, _ = _keys(queue)
        pipe = self._client.pipeline(transaction=False)
        for job in jobs:
            pipe.zscore(lines + str(job["org"]), str(job["_id"]))
        found = pipe.execute()
        return {
            str(job["_id"]) for job, place in zip(jobs, found, strict=True) if place is not None
        }

    def backlog(self, queue: str) -> int:
        """Turns waiting on the broker for ``queue``."""
        return int(self._client.llen(turn_list(queue)))
