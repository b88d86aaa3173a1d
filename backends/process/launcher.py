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
with its own pid. A second launcher for the same run (a submit retried after its worker
was killed between starting the launcher and recording it) finds the file, reports the
first launcher's pid instead and exits without running anything.

The launcher reports the pid of the run's launcher on its stdout (a pipe the backend
reads), then sends its own output and the workload's to the run's log. SIGTERM and SIGINT
get a no-op trap rather than being ignored: the launcher survives a graceful stop sent to
the group and still records the exit code, while the workload, whose trapped signals are
reset to the default, receives the signal normally (an ignored disposition, by contrast,
would be inherited). A workload killed by signal N shows as exit code 128+N, the shell's
convention, and is recorded with ``"signal": N``.
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
dir=$1; shift
set -C
if {{ echo "$$" > "$dir/{layout.LAUNCHER_FILE}"; }} 2>/dev/null; then
  set +C
  echo "$$"
  exec >>"$dir/{contract.LOG_FILE}" 2>&1 </dev/null
  trap ':' TERM INT
  "$@"
  code=$?
  signal=null
  if [ "$code" -gt 128 ]; then signal=$((code - 128)); fi
  printf '{{"exit_code": %d, "signal": %s}}\\n' "$code" "$signal" > "$dir/.{layout.EXIT_FILE}.tmp"
  mv -f "$dir/.{layout.EXIT_FILE}.tmp" "$dir/{layout.EXIT_FILE}"
  exit "$code"
fi
read -r pid < "$dir/{layout.LAUNCHER_FILE}"
echo "$pid"
"""


# Launchers this process started and has not reaped yet. A launcher is this process's
# child (no double fork, which would cost a second process per run), so this process must
# wait() for it once it ends, or it stays a zombie: ``reap`` does, at every start and poll.
_children: list[subprocess.Popen[bytes]] = []


def reap() -> None:
    """Collect the launchers of this process that have ended."""
    _children[:] = [child for child in _children if child.poll() is None]


def start(
    run_dir: Path, argv: Sequence[str], env: Mapping[str, str], cwd: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a launcher for the run; (its process, what it reported on stdout: the pid of
    the launcher that runs the workload, or "" if it died before saying).

    The caller keeps the process object until it has read the pid's start time: until
    then the launcher cannot be reaped, so its ``/proc`` entry stays readable.
    """
    proc = subprocess.Popen(
        ["/bin/sh", "-c", SCRIPT, NAME, str(run_dir), *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=cwd,
        env=dict(env),
        start_new_session=True,
        close_fds=True,
    )
    reap()
    _children.append(proc)
    assert proc.stdout is not None
    with proc.stdout:
        reported = proc.stdout.readline().decode("ascii", "replace").strip()
    return proc, reported


def read_launcher_pid(run_dir: Path) -> int | None:
    """The pid the run's launcher recorded, or None while there is none (yet)."""
    try:
        text = layout.launcher_file(run_dir).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def is_launcher(pid: int) -> bool:
    """Whether ``pid`` runs the launcher script (for tests and diagnostics)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return NAME.encode() in argv[:4]
