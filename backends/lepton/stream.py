"""How status events and the exit code travel from a Lepton container back to jobyard.

A Lepton container shares no file system with the worker, and the job API reports no exit
code, so the container's stdout (the replica log) carries everything: the ``entrypoint``
wrapper copies each line the workload appends to its status file onto stdout behind
``STATUS_MARKER``, and writes one ``EXIT_MARKER`` line with the workload's exit code last.
Every other line is the workload's own output.

The functions here are pure: the same replica-log prefix always splits into the same two
streams, so byte offsets into those streams stay valid from one read to the next.
"""

from __future__ import annotations

MARKER_PREFIX = b"@@jobyard:"
STATUS_MARKER = MARKER_PREFIX + b"status@@ "
EXIT_MARKER = MARKER_PREFIX + b"exit@@ "


def status_line(line: bytes) -> bytes:
    """One status-file line as the wrapper prints it (always newline-terminated)."""
    return STATUS_MARKER + line.rstrip(b"\n") + b"\n"


def exit_line(code: int) -> bytes:
    return EXIT_MARKER + str(code).encode() + b"\n"


def _lines(raw: bytes, complete: bool) -> list[bytes]:
    """Whole lines of ``raw``; the unterminated tail counts only once the log is complete."""
    lines = raw.splitlines(keepends=True)
    if lines and not lines[-1].endswith(b"\n") and not complete:
        lines.pop()
    return lines


def split_log(raw: bytes, complete: bool) -> tuple[bytes, bytes]:
    """(status stream, log stream) of a replica log.

    The status stream is the status-file lines without their marker; the log stream is
    every line that carries no marker. ``complete`` says the container has exited, so a
    last line without a newline is final rather than half-written.
    """
    status: list[bytes] = []
    log: list[bytes] = []
    for line in _lines(raw, complete):
        if line.startswith(STATUS_MARKER):
            status.append(line[len(STATUS_MARKER) :])
        elif not line.startswith(EXIT_MARKER):
            log.append(line)
    return b"".join(status), b"".join(log)


def exit_code(raw: bytes) -> int | None:
    """The exit code the wrapper reported last, or None if it never got to report one."""
    found: int | None = None
    for line in _lines(raw, complete=True):
        if line.startswith(EXIT_MARKER):
            try:
                found = int(line[len(EXIT_MARKER) :].strip())
            except ValueError:
                continue
    return found
