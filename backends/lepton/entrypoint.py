"""The wrapper that runs inside a Lepton container in front of the workload.

Run as ``python -m jobyard.backends.lepton.entrypoint -- COMMAND...``. It

1. writes ``JY_SPECS_JSON`` to ``JY_SPECS_FILE`` (a container has no other way to receive
   a file from jobyard) and removes the variable from the workload's environment; links
   ``JY_STATUS_LINK`` (a tao workload's own status file) to ``JY_STATUS_FILE``;
2. starts the workload with stdout and stderr on a pipe and copies them, line by line, to
   its own stdout, so that no other writer can land in the middle of a line;
3. copies each new line of the status file to stdout behind ``stream.STATUS_MARKER``;
4. forwards SIGTERM and SIGINT to the workload (on Lepton only PID 1 gets the stop signal),
   so a graceful stop lets it checkpoint and exit 75;
5. prints ``stream.EXIT_MARKER`` with the workload's exit code and exits with that code,
   because the Lepton job API reports states, not exit codes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import IO

from jobyard.backends.lepton import stream

SPECS_VARIABLE = "JY_SPECS_JSON"
STATUS_LINK_VARIABLE = "JY_STATUS_LINK"
POLL_SECONDS = 0.2
EXIT_CANNOT_EXECUTE = 127
MAX_LINE_BYTES = 64 * 1024  # a longer line (a progress bar that never ends one) is cut


class Output:
    """The container's stdout, shared by two threads; every write is one whole line."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self.lock:
            self.out.write(data)
            self.out.flush()


class StatusTail:
    """Follows the status file from its first byte and emits every complete line."""

    def __init__(self, path: Path, output: Output) -> None:
        self.path = path
        self.output = output
        self.offset = 0
        self.pending = b""
        self.done = threading.Event()

    def pump(self, final: bool = False) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            data = b""
        self.offset += len(data)
        self.pending += data
        *lines, self.pending = self.pending.split(b"\n")
        if final and self.pending:
            lines.append(self.pending)
            self.pending = b""
        for line in lines:
            if line.strip():
                self.output.write(stream.status_line(line))

    def run(self) -> None:
        while not self.done.wait(POLL_SECONDS):
            self.pump()


def prepare(environ: dict[str, str]) -> dict[str, str]:
    """Write the spec file and create the status file's directory; the workload's env."""
    env = dict(environ)
    specs = env.pop(SPECS_VARIABLE, None)
    specs_file = env.get("JY_SPECS_FILE")
    if specs is not None and specs_file:
        Path(specs_file).parent.mkdir(parents=True, exist_ok=True)
        Path(specs_file).write_text(specs, encoding="utf-8")
    status_file = env.get("JY_STATUS_FILE")
    if status_file:
        Path(status_file).parent.mkdir(parents=True, exist_ok=True)
    link = env.pop(STATUS_LINK_VARIABLE, None)
    if link and status_file:  # a tao workload writes its own status file: make it the run's
        where = Path(link)
        where.parent.mkdir(parents=True, exist_ok=True)
        tmp = where.with_name(f".{where.name}.{os.getpid()}.link")
        tmp.unlink(missing_ok=True)
        os.symlink(os.path.relpath(status_file, where.parent), tmp)
        os.replace(tmp, where)
    return env


def command(argv: Sequence[str]) -> list[str]:
    args = list(argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        raise SystemExit(
            "entrypoint: usage: python -m jobyard.backends.lepton.entrypoint -- COMMAND..."
        )
    if args[0] == "python":
        args[0] = sys.executable  # the interpreter of this image, whatever its name
    return args


class Forwarder:
    """Passes SIGTERM and SIGINT on to the workload. Installed before the workload
    starts, so an early stop neither kills the wrapper nor gets lost: it is delivered as
    soon as there is a workload to receive it."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.pending: list[int] = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.child is None:
            self.pending.append(signum)
        elif self.child.poll() is None:
            self.child.send_signal(signum)

    def attach(self, child: subprocess.Popen[bytes]) -> None:
        self.child = child
        for signum in self.pending:
            child.send_signal(signum)


def _copy_lines(source: IO[bytes], output: Output) -> None:
    """The workload's output, one whole line at a time; a line that happens to start
    like a marker gets one leading space, so the workload's output can never pose as a
    status event or an exit code."""
    for line in iter(lambda: source.readline(MAX_LINE_BYTES), b""):
        if line.startswith(stream.MARKER_PREFIX):
            line = b" " + line
        output.write(line if line.endswith(b"\n") else line + b"\n")


def run(argv: Sequence[str], out: IO[bytes]) -> int:
    output = Output(out)
    env = prepare(dict(os.environ))
    args = command(argv)
    tail = StatusTail(Path(env.get("JY_STATUS_FILE") or os.devnull), output)
    forwarder = Forwarder()
    try:
        child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    except OSError as e:
        output.write(f"entrypoint: cannot execute {args[0]!r}: {e}\n".encode())
        output.write(stream.exit_line(EXIT_CANNOT_EXECUTE))
        return EXIT_CANNOT_EXECUTE
    forwarder.attach(child)
    follower = threading.Thread(target=tail.run, daemon=True)
    follower.start()
    assert child.stdout is not None
    _copy_lines(child.stdout, output)
    returncode = child.wait()
    tail.done.set()
    follower.join()
    tail.pump(final=True)
    code = 128 - returncode if returncode < 0 else returncode
    output.write(stream.exit_line(code))
    return code


def main(argv: Sequence[str] | None = None) -> int:
    return run(sys.argv[1:] if argv is None else argv, sys.stdout.buffer)


if __name__ == "__main__":
    raise SystemExit(main())
