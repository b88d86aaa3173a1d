"""The tiny supervisor between the backend and a workload: a POSIX shell script that
outlives the worker that started it and records how the workload ended.

Why it exists: the backend keeps no in-memory state, and a worker may restart at any time,
so something must stay around to ``wait()`` for the workload and write its exit code to
``exit.json``. The launcher does only that, and costs a shell's start (about a
millisecond, against ~50 ms for a Python interpreter), so trivial jobs are cheap.

Process tree: ``worker --Popen(start_new_session)--> sh (launcher) --> workload``. The
launcher leads a fresh session and process group that the workload inherits: one
``killpg`` reaches both.

At most one launcher runs a workload per run, whatever the workers do: the first thing a
launcher does is create ``launcher.pid`` exclusively (``set -C``, an ``O_EXCL`` open)
with its own pid. A second launcher for the same run finds the file and exits without
running anything. A submit retried after its worker was killed between starting the
launcher and recording it finds ``launcher.pid`` and adopts that launcher instead of
starting one.

The launcher sends its own output and the workload's to the run's log. SIGTERM and SIGINT
get a no-op trap rather than being ignored: the launcher survives a graceful stop sent to
the group and still records the exit code, while the workload, whose trapped signals are
reset to the default, receives the signal normally (an ignored disposition, by contrast,
would be inherited). A workload killed by signal N shows as exit code 128+N, the shell's
convention, and is recorded with ``"signal": N``. Once ``exit.json`` is written the
launcher leaves an empty marker named after the run in the root's ``.exited/``, so a poll
of many runs lists one directory instead of opening every run's ``exit.json``, and reads
an ``exit.json`` only once it is whole (its marker exists, or its launcher is gone). Every
step is a shell builtin: the launcher costs one process besides the workload's own.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from jobyard.backends import contract
from jobyard.backends.process import layout

NAME = "jobyard-launcher"  # $0 of the script: how a launcher is found in a process list
EXIT_CANNOT_EXECUTE = 127  # what the shell answers for a command it cannot run
SCRIPT = f"""\
dir=$1; exited=$2; shift 2
set -C
if {{ echo "$$" > "$dir/{layout.LAUNCHER_FILE}"; }} 2>/dev/null; then
  set +C
  exec >>"$dir/{contract.LOG_FILE}" 2>&1 </dev/null
  trap ':' TERM INT
  "$@"
  code=$?
  signal=null
  if [ "$code" -gt 128 ]; then signal=$((code - 128)); fi
  printf '{{"exit_code": %d, "signal": %s}}\\n' "$code" "$signal" > "$dir/{layout.EXIT_FILE}"
  : > "$exited"
  exit "$code"
fi
"""


# Launchers this process started and has not reaped yet. A launcher is this process's
# child (no double fork, which would cost a second process per run), so this process must
# wait() for it once it ends, or it stays a zombie: ``reap`` does, at every start and poll.
_children: list[subprocess.Popen[bytes]] = []


def reap() -> None:
    """Collect the launchers of this process that have ended."""
    _children[:] = [child for child in _children if child.poll() is None]


def start(
    run_dir: Path, exited: Path, argv: Sequence[str], env: Mapping[str, str], cwd: Path
) -> subprocess.Popen[bytes]:
    """Start a launcher for the run. Not waited for: the caller records the process's
    pid at once (and reads its start time while it cannot have been reaped); a launcher
    that finds the run already launched exits without running anything, and the backend
    then follows ``launcher.pid``."""
    proc = subprocess.Popen(
        ["/bin/sh", "-c", SCRIPT, NAME, str(run_dir), str(exited), *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=cwd,
        env=dict(env),
        start_new_session=True,
        close_fds=True,
    )
    reap()
    _children.append(proc)
    return proc


def read_launcher_pid(run_dir: Path) -> int | None:
    """The pid the run's launcher recorded, or None while there is none (yet)."""
    try:
        text = layout.launcher_file(run_dir).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def is_launcher(pid: int, run_dir: Path) -> bool:
    """Whether ``pid`` runs the launcher script for ``run_dir``."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return NAME.encode() in argv[:4] and str(run_dir).encode() in argv[:5]
