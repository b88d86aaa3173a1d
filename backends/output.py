"""How a backend hands back a status file read by offset: whole lines only, shared by
every backend so the engine's exactly-once parsing holds whatever the transport."""

from __future__ import annotations

import os
from pathlib import Path

from jobyard.backends.base import Output


def read_chunk(path: Path, offset: int, max_bytes: int) -> bytes:
    """At most ``max_bytes`` from ``offset``; a file not written yet reads as nothing.

    The size is looked at first: most runs wrote nothing new since the last tick, and a
    stat is cheaper than opening the file (reconcile does this for every running job)."""
    try:
        if os.stat(path).st_size <= max(offset, 0):
            return b""
        with open(path, "rb") as fh:
            fh.seek(max(offset, 0))
            return fh.read(max_bytes)
    except FileNotFoundError:
        return b""


def output_chunk(status: bytes, log: bytes, max_bytes: int, at_end: bool) -> Output:
    """What ``read_output`` returns for one run, from raw reads of at most ``max_bytes``.

    ``more`` says a read was cut at ``max_bytes``: whole-line trimming makes a cut status
    read shorter than ``max_bytes``, so length alone cannot tell the engine that the run's
    last lines are still waiting.
    """
    more = len(status) >= max_bytes or len(log) >= max_bytes
    return Output(whole_lines(status, max_bytes, at_end), log, more)


def whole_lines(data: bytes, max_bytes: int, at_end: bool) -> bytes:
    """Cut ``data`` after its last newline so a reader never stores half a JSON line.

    Two exceptions keep the reader moving: a single line longer than ``max_bytes`` comes
    back as the ``max_bytes`` slice, and once the launcher recorded the exit and ``data``
    reaches the end of the file (``at_end``), an unterminated last line is as complete as
    it will ever be and comes back as it is.
    """
    if at_end:
        return data
    end = data.rfind(b"\n")
    if end >= 0:
        return data[: end + 1]
    return data if len(data) >= max_bytes else b""
