"""The one retry policy: exponential backoff with jitter and a cap.

Every transient failure that is tried again later (a submit, a staging copy, a result
upload) waits ``backoff(attempt)``: doubling from ``base``, never above ``cap``, and
spread by jitter so that jobs failing together (a cluster going down) do not all come
back in the same second.
"""

from __future__ import annotations

import random
from collections.abc import Callable

BASE_SECONDS = 1.0
CAP_SECONDS = 60.0
JITTER = 0.5  # the wait is between (1 - JITTER) and 1 times the exponential step


def backoff(
    attempt: int,
    base: float = BASE_SECONDS,
    cap: float = CAP_SECONDS,
    jitter: float = JITTER,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
    step = min(cap, base * float(2 ** min(max(attempt, 0), 32)))
    return step * (1.0 - jitter + jitter * rand())
