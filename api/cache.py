"""An in-process cache whose entries live for a fixed time, for answers that cost a call to
another system: each key's value is computed at most once per lifetime in this process,
however many threads ask for it at once (the others wait for the one computing it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

T = TypeVar("T")


class TtlCache:
    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._computing: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The value kept for ``key``, or ``compute()``'s, kept from now on. A ``compute``
        that raises keeps nothing: the next caller computes again."""
        with self._lock:
            found = self._fresh(key)
            if found is not None:
                return cast(T, found[0])
            computing = self._computing.setdefault(key, threading.Lock())
        with computing:
            with self._lock:
                found = self._fresh(key)
            if found is not None:  # computed while this caller waited
                return cast(T, found[0])
            value = compute()
            with self._lock:
                self._drop_expired()
                self._entries[key] = (self._clock(), value)
                # Later callers find the entry first; one that failed keeps its lock, so
                # callers already waiting and new ones still take turns.
                if self._computing.get(key) is computing:
                    del self._computing[key]
            return value

    def _fresh(self, key: Hashable) -> tuple[Any] | None:
        entry = self._entries.get(key)
        if entry is None or self._clock() - entry[0] >= self.ttl_seconds:
            return None
        return (entry[1],)

    def _drop_expired(self) -> None:
        now = self._clock()
        for key in [k for k, (at, _) in self._entries.items() if now - at >= self.ttl_seconds]:
            del self._entries[key]
