"""Just enough of ``/proc`` to tell whether *our* launcher is still alive.

A pid alone is not an identity: after the launcher exits the kernel may hand the number to
an unrelated process. The start time (``/proc/<pid>/stat`` field 22, in clock ticks since
boot) is fixed for a process's life, so (pid, start ticks) names one process for good.
A zombie still has its stat entry but runs nothing; orphans here may never be reaped (the
sandbox's PID 1 does not reap), so state ``Z`` counts as dead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
DEAD_STATES = frozenset({"Z", "X", "x"})


@dataclass(frozen=True)
class ProcStat:
    pid: int
    state: str
    pgrp: int
    start_ticks: int

    @property
    def dead(self) -> bool:
        return self.state in DEAD_STATES


def parse_stat(text: str) -> ProcStat:
    """Parse one ``/proc/<pid>/stat`` line.

    The command name (field 2) is in parentheses and may itself contain spaces and
    parentheses, so the fixed fields are counted from the *last* ``)``.
    """
    head, _, tail = text.rpartition(")")
    pid = int(head.split("(", 1)[0])
    fields = tail.split()
    # fields[0] is field 3 (state); field N is fields[N - 3].
    return ProcStat(pid=pid, state=fields[0], pgrp=int(fields[2]), start_ticks=int(fields[19]))


def read_stat(pid: int) -> ProcStat | None:
    """The process's stat entry, or None once it is gone (or was never there)."""
    try:
        text = (PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    return parse_stat(text)


def self_start_ticks() -> int:
    stat = read_stat(os.getpid())
    if stat is None:
        raise OSError(f"cannot read {PROC}/self/stat")
    return stat.start_ticks


def is_alive(pid: int, start_ticks: int) -> bool:
    """True while the process started at ``start_ticks`` still runs as ``pid``."""
    stat = read_stat(pid)
    return stat is not None and stat.start_ticks == start_ticks and not stat.dead


def group_members(pgid: int) -> list[ProcStat]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = read_stat(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue  # vanished or unreadable between listing and reading
        if stat is not None and stat.pgrp == pgid and not stat.dead:
            members.append(stat)
    return members
