"""How a backend hands back a status file read by offset: whole lines only, shared by
every backend so the engine's exactly-once parsing holds whatever the transport."""

from __future__ import annotations


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
