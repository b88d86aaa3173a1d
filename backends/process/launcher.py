"""The tiny supervisor between the backend and a workload: it outlives the worker that
started it and records how the workload ended.

Run as ``python -m jobyard.backends.process.launcher --run-dir DIR [--report-fd FD] -- COMMAND...``.

Why it exists: the backend keeps no in-memory state, and a worker may restart at any time,
so something must stay around to ``wait()`` for the workload and write its exit code to
``exit.json``. The launcher does only that.

Process tree, with ``--report-fd`` (how the backend starts it)::

    worker --Popen--> launcher (first) --fork--> launcher (second, setsid) --> workload

The first launcher process forks and exits at once, so the worker reaps it straight away
and never collects zombies, however long the run lasts. The second calls ``setsid()`` and
thereby leads a fresh process group that the workload inherits: one ``killpg`` reaches
both. It reports ``{"pid", "start_ticks"}`` on the pipe and closes it; the backend writes
``launch.json`` from that. Orphaned, it is reaped by init (or by nobody, in sandboxes whose
PID 1 does not reap: the backend treats a zombie as dead, and ``exit.json`` is already
written by then).

SIGTERM and SIGINT get a no-op handler rather than ``SIG_IGN``: the launcher survives a
graceful stop sent to the group and still records the exit code, while the workload, whose
handlers are reset to the default by ``exec``, receives the signal normally (an ignored
disposition, by contrast, would be inherited across ``exec``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from jobyard.backends.process import layout, procfs
from jobyard.backends.process.files import write_json_atomic

EXIT_CANNOT_EXECUTE = 127


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """Options before ``--``; everything after it is the command, taken verbatim."""
    args = list(argv)
    if "--" not in args:
        raise SystemExit("launcher: usage: --run-dir DIR [--report-fd FD] -- COMMAND...")
    split = args.index("--")
    parser = argparse.ArgumentParser(prog="jobyard.backends.process.launcher")
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--report-fd", type=int, default=None)
    options = parser.parse_args(args[:split])
    command = args[split + 1 :]
    if not command:
        parser.error("no command after --")
    return options, command


def _ignore(signum: int, frame: FrameType | None) -> None:
    """Survive a stop sent to the whole group; the workload decides how to react."""


def install_signal_handlers() -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _ignore)


def detach(report_fd: int) -> None:
    """Fork; the parent exits now, the child leads a new session and reports its identity.

    Only the child returns from this function.
    """
    if os.fork() > 0:
        os._exit(0)
    try:
        os.setsid()
        report = {"pid": os.getpid(), "start_ticks": procfs.self_start_ticks()}
        os.write(report_fd, json.dumps(report).encode() + b"\n")
    finally:
        os.close(report_fd)


def run(command: list[str]) -> tuple[int, int | None]:
    """Start and wait for the workload; (exit code, terminating signal or None)."""
    try:
        child = subprocess.Popen(command)
    except OSError as e:
        print(f"launcher: cannot execute {command[0]!r}: {e}", file=sys.stderr, flush=True)
        return EXIT_CANNOT_EXECUTE, None
    returncode = child.wait()
    if returncode < 0:
        return 128 - returncode, -returncode
    return returncode, None


def record_exit(run_dir: Path, exit_code: int, signum: int | None) -> None:
    doc = {"exit_code": exit_code, "signal": signum, "finished_at": time.time()}
    write_json_atomic(layout.exit_file(run_dir), doc)


def main(argv: Sequence[str] | None = None) -> int:
    install_signal_handlers()
    options, command = parse_args(sys.argv[1:] if argv is None else argv)
    if options.report_fd is not None:
        detach(options.report_fd)
    exit_code, signum = run(command)
    record_exit(options.run_dir, exit_code, signum)
    return exit_code


if __name__ == "__main__":
    raise SystemExit(main())
