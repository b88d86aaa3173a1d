"""Timestamps are stored as epoch seconds (float, millisecond precision).

Numbers sort, compare and survive every MongoDB-wire server the same way;
the embedded nx-27017 turns a ``$set`` datetime into a string, which would
break range queries such as timeouts. On MongoDB (and SecantusDB in the
tests) numbers answer every query the store makes exactly as datetimes
would, so this is no workaround to drop. Schemas render them as ISO 8601.
"""

from __future__ import annotations

import time


def utcnow() -> float:
    return round(time.time(), 3)
