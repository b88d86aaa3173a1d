"""Repeated bad API keys are slowed down: after a few failed logins for one key id, or
many from one client, logins from there are refused with 429 and a ``Retry-After`` for
the rest of the window.

Counters live in Redis (shared by every API process) and expire on their own. Redis being
down never blocks a login: the limit is a brake on guessing, not an authentication step,
and keys are 192 random bits anyway.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

logger = logging.getLogger(__name__)
PREFIX = "jobyard:login-failures:"


@dataclass(frozen=True)
class Limited:
    """Too many failures: when to try again."""

    retry_after: int
    what: str  # "this key" or "this client"


class LoginThrottle:
    def __init__(
        self, client: redis.Redis, per_key: int, per_client: int, window_seconds: int
    ) -> None:
        self._redis = client
        self._limits = (("key", per_key), ("client", per_client))
        self._window = window_seconds

    def _keys(self, key_id: str | None, client: str) -> list[tuple[str, str, int]]:
        found = []
        for kind, limit in self._limits:
            value = key_id if kind == "key" else client
            if value:
                found.append((kind, f"{PREFIX}{kind}:{value}", limit))
        return found

    def check(self, key_id: str | None, client: str) -> Limited | None:
        """Whether logins for this key id / from this client are held back now."""
        keys = self._keys(key_id, client)
        try:
            pipe = self._redis.pipeline()
            for _, name, _limit in keys:
                pipe.get(name)
                pipe.pttl(name)
            answers = pipe.execute()
        except redis.RedisError as e:
            logger.warning("login throttle unavailable (%s); not limiting", type(e).__name__)
            return None
        for index, (kind, _, limit) in enumerate(keys):
            count, ttl = answers[2 * index], answers[2 * index + 1]
            if count is not None and int(count) >= limit:
                seconds = max(1, (int(ttl) + 999) // 1000) if ttl and ttl > 0 else self._window
                return Limited(seconds, "this key" if kind == "key" else "this client")
        return None

    def failed(self, key_id: str | None, client: str) -> None:
        try:
            pipe = self._redis.pipeline()
            for _, name, _limit in self._keys(key_id, client):
                pipe.set(name, 0, ex=self._window, nx=True)  # the window starts at the first
                pipe.incr(name)
            pipe.execute()
        except redis.RedisError as e:
            logger.warning("login throttle unavailable (%s); failure not counted", type(e).__name__)
