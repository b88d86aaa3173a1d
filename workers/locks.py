"""Redis leases that only their owner can release or renew.

A lease is a key set with ``NX`` and an expiry, holding a random token. Releasing or
renewing compares the token in one Lua call, so a worker that stalled past its lease can
never delete (or extend) the lock the next holder took meanwhile.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, Protocol

import redis

PREFIX = "jobyard:lock:"
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)


class Renewable(Protocol):
    def renew(self, seconds: float | None = None) -> bool: ...


class Lease:
    def __init__(self, client: redis.Redis, name: str, token: str, seconds: float) -> None:
        self._client = client
        self.key = PREFIX + name
        self.token = token
        self.seconds = seconds

    def release(self) -> bool:
        """True if the lease was still ours and is gone now."""
        return bool(self._client.eval(_RELEASE, 1, self.key, self.token))

    def renew(self, seconds: float | None = None) -> bool:
        """Extend a lease we still hold; False if it ran out and may be someone else's."""
        ttl = _milliseconds(seconds if seconds is not None else self.seconds)
        return bool(self._client.eval(_RENEW, 1, self.key, self.token, ttl))


def acquire(client: redis.Redis, name: str, seconds: float) -> Lease | None:
    token = secrets.token_hex(16)
    if client.set(PREFIX + name, token, nx=True, px=_milliseconds(seconds)):
        return Lease(client, name, token, seconds)
    return None


@contextmanager
def held(client: redis.Redis, name: str, seconds: float) -> Iterator[Lease | None]:
    """The lease for the ``with`` block, or None when someone else holds it."""
    lease = acquire(client, name, seconds)
    try:
        yield lease
    finally:
        if lease is not None:
            lease.release()


@contextmanager
def kept(lease: Renewable, seconds: float) -> Iterator[None]:
    """Renew ``lease`` (``seconds`` long) every third of its length while the block runs:
    a holder that dies frees it within one length, however long a live holder works."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(seconds / 3):
            with suppress(Exception):  # a failed renewal is retried; expiry is the fallback
                lease.renew(seconds)

    keeper = threading.Thread(target=renew, name="lease keeper", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join()


def _milliseconds(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def force_release(client: redis.Redis, name: str) -> Any:
    """Drop a lease whoever holds it: for operators and benchmarks, never for workers."""
    return client.delete(PREFIX + name)
