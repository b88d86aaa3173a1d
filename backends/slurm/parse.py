"""Parse what squeue and scontrol print, and map SLURM job states onto ``RunState``.

Pure functions, so each format quirk is pinned by a golden test. The commands they expect:

* ``squeue -h -t all -u USER --name=N1,N2,... -o '%i|%j|%T|%r'`` (see ``squeue_command``):
  ``-t all`` keeps finished jobs listed for ``MinJobAge`` seconds, so one call answers for
  queued, running and recently finished runs alike. Filtering by exact job names (the
  deterministic run names) rather than a prefix keeps the output to the runs asked about.
* ``scontrol show job -o ID`` once per id inside one shell command (``scontrol_command``):
  SLURM 22.05 accepts one id per call, and without slurmdbd ``sacct`` does not work, so this
  is where the exit code of a finished job comes from.
* ``sinfo -h -o '%P|%G|%D'`` (``SINFO_COMMAND``): one line per partition and kind of node,
  with the nodes' generic resources and how many nodes have them (``parse_sinfo``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from jobyard.backends.base import CPU, EXIT_PAUSED, UNTYPED_GPU, Accelerator, RunState, RunStatus

SQUEUE_FORMAT = "%i|%j|%T|%r"


class QueueEntry(NamedTuple):
    job_id: str
    state: str
    reason: str


def squeue_command(user: str, names: Iterable[str]) -> str:
    """The squeue call ``parse_squeue`` reads: every state, only these names, no header."""
    listed = ",".join(sorted(set(names)))
    return (
        f"squeue -h -t all -u {shlex.quote(user)} --name={shlex.quote(listed)}"
        f" -o {shlex.quote(SQUEUE_FORMAT)}"
    )


def scontrol_command(job_ids: Iterable[str]) -> str:
    """One round trip for many ids; an id SLURM forgot prints an error line, which is skipped."""
    ids = " ".join(shlex.quote(i) for i in sorted(set(job_ids), key=_id_key))
    return f'for id in {ids}; do scontrol show job -o "$id"; done 2>&1; true'


def scancel_command(job_id: str, graceful: bool) -> str:
    """Stop a job. One still pending is cancelled outright (it has nothing to checkpoint,
    and ``scancel --signal`` of a pending job does not fail: it waits until the job starts,
    SLURM 22.05); a running one gets the signal in its batch script (``--full``: plain
    ``--signal`` reaches job steps only), or is cancelled if the signal cannot be sent."""
    quoted = shlex.quote(job_id)
    signal = "TERM" if graceful else "KILL"
    return (
        f"scancel --state=PENDING {quoted}; "
        f"scancel --signal={signal} --full {quoted} 2>/dev/null || scancel {quoted}"
    )


def parse_squeue(text: str) -> dict[str, QueueEntry]:
    """``{job name: (job id, state, reason)}``; with several jobs of one name, the newest.

    The name is the middle of the line, so a ``|`` inside a job name does not shift fields.
    """
    jobs: dict[str, QueueEntry] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 4 or not parts[0]:
            continue
        job_id, state, reason = parts[0], parts[-2], parts[-1]
        name = "|".join(parts[1:-2])
        known = jobs.get(name)
        if known is None or _id_key(job_id) > _id_key(known.job_id):
            jobs[name] = QueueEntry(job_id, state, reason)
    return jobs


# A field starts where whitespace is followed by ``Key=``; keys look like JobId, TRES,
# Socks/Node, ReqB:S:C:T, NtasksPerN:B:S:C. Values may hold spaces (JobName) and ``=`` (TRES).
_FIELD = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=")


def parse_scontrol(text: str) -> dict[str, dict[str, str]]:
    """``{job id: {field: value}}`` from ``scontrol show job -o`` lines; other lines skipped."""
    jobs: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        fields = parse_scontrol_line(line)
        job_id = fields.get("JobId")
        if job_id:
            jobs[job_id] = fields
    return jobs


def parse_scontrol_line(line: str) -> dict[str, str]:
    matches = list(_FIELD.finditer(line.rstrip("\n")))
    fields: dict[str, str] = {}
    if not matches:
        return fields
    for here, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following is not None else len(line)
        fields[here.group(1)] = line[here.end() : end].strip()
    return fields


def parse_exit_code(text: str | None) -> tuple[int | None, int | None]:
    """``"3:0"`` → ``(3, 0)``: the return code and the signal that ended the job, if known."""
    if not text:
        return None, None
    code, _, signal = text.strip().partition(":")
    try:
        return int(code), int(signal) if signal else 0
    except ValueError:
        return None, None


_QUEUED = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}
_RUNNING = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING"}
_TRANSIENT = {
    "NODE_FAIL": "node failure",
    "PREEMPTED": "preempted",
    "BOOT_FAIL": "node boot failure",
}
_FAILED = {
    "TIMEOUT": "timeout: SLURM time limit reached",
    "OUT_OF_MEMORY": "out of memory",
    "DEADLINE": "deadline reached",
    "REVOKED": "revoked by a sibling cluster",
    "SPECIAL_EXIT": "special exit",
}


def run_state(state: str, exit_code: str | None = None, slurm_reason: str = "") -> RunStatus:
    """Map a SLURM job state (and ``ExitCode`` ``rc:signal``) to a run's status.

    * Exit code 75 after a clean exit is a checkpointed pause, whichever state SLURM names
      (FAILED after ``scancel --signal=TERM --full``, CANCELLED when the workload beat the KILL),
      except after TIMEOUT: a timed-out run must not look resumable.
    * NODE_FAIL, PREEMPTED and BOOT_FAIL are not the workload's fault: ``LOST`` and
      ``transient``, so the engine may submit the run again.
    * SUSPENDED is reported as QUEUED: the run makes no progress until SLURM resumes it.
    """
    name = state.strip().split(" ")[0].rstrip("+").upper()
    code, signal = parse_exit_code(exit_code)
    waiting = waiting_reason(slurm_reason) if slurm_reason and slurm_reason != "None" else ""
    if name in _QUEUED:
        return RunStatus(RunState.QUEUED, None, _join(name.lower(), waiting))
    if name == "SUSPENDED":
        return RunStatus(RunState.QUEUED, None, _join("suspended", waiting))
    if name in _RUNNING:
        return RunStatus(RunState.RUNNING, None, "")
    if name in _TRANSIENT:
        return RunStatus(RunState.LOST, code, f"{_TRANSIENT[name]} ({name})", transient=True)
    if name == "TIMEOUT":
        return RunStatus(RunState.FAILED, code, _FAILED[name])
    if code == EXIT_PAUSED and not signal:
        return RunStatus(RunState.PAUSED, code, "paused with a checkpoint")
    if name == "COMPLETED":
        return RunStatus(RunState.SUCCEEDED, 0 if code is None else code, "")
    if name == "CANCELLED":
        return RunStatus(
            RunState.KILLED, code if not signal else None, _join("cancelled", _signal(signal))
        )
    if name in _FAILED:
        return RunStatus(RunState.FAILED, code, _FAILED[name])
    if name == "FAILED":
        if signal:
            return RunStatus(RunState.KILLED, None, f"killed by signal {signal}")
        return RunStatus(
            RunState.FAILED, code, f"exit code {code}" if code is not None else "failed"
        )
    return RunStatus(RunState.LOST, code, f"unknown SLURM job state {state.strip()!r}")


def _join(head: str, tail: str) -> str:
    return f"{head}: {tail}" if tail else head


def _signal(signal: int | None) -> str:
    return f"signal {signal}" if signal else ""


def _id_key(job_id: str) -> tuple[int, str]:
    """Numeric order for plain ids (``9 < 10``); array ids like ``12_3`` sort by their head."""
    head = job_id.split("_")[0].split("+")[0]
    return (int(head), job_id) if head.isdigit() else (-1, job_id)


# --- one round trip per tick ---------------------------------------------------------

# States where squeue alone says enough; for the others the exit code matters, which only
# scontrol (or sacct, where accounting runs) reports.
_LIVE = sorted(_QUEUED | _RUNNING | {"SUSPENDED"})
_TAG_QUEUE, _TAG_CONTROL, _TAG_ACCOUNTING = "Q ", "C ", "A "
SACCT_FORMAT = "JobIDRaw,State,ExitCode"


def poll_command(user: str, names: Iterable[str], job_ids: Iterable[str]) -> str:
    """One shell command answering for every run on a cluster, each line tagged by source.

    ``squeue`` covers queued and running runs (with SLURM's reason for waiting). For each id
    squeue does not show as live, ``scontrol show job`` gives the final state and exit code
    while the controller remembers the job (``MinJobAge``); after that, ``sacct`` answers
    where accounting runs. Whatever the number of runs, this is one SSH exec.
    """
    ids = " ".join(shlex.quote(i) for i in sorted(set(job_ids), key=_id_key))
    live = "|".join(_LIVE)
    return (
        f"q=$({squeue_command(user, names)} 2>/dev/null); "
        "printf '%s\\n' \"$q\" | sed '/^$/d; s/^/Q /'; "
        f"for id in {ids}; do "
        "s=$(printf '%s\\n' \"$q\" | awk -F'|' -v id=\"$id\" '$1 == id {print $(NF-1)}'); "
        f'case "$s" in {live}) ;; *) '
        'if c=$(scontrol show job -o "$id" 2>/dev/null); then '
        "printf '%s\\n' \"$c\" | sed 's/^/C /'; "
        f"else sacct -n -P -X -j \"$id\" -o {SACCT_FORMAT} 2>/dev/null | sed 's/^/A /'; fi;; "
        "esac; done; true"
    )


class PollResult(NamedTuple):
    queue: dict[str, QueueEntry]  # by run name
    control: dict[str, dict[str, str]]  # by SLURM job id
    accounting: dict[str, tuple[str, str]]  # by SLURM job id: (state, exit code)


def parse_poll(text: str) -> PollResult:
    queue, control, accounting = [], [], {}
    for line in text.splitlines():
        if line.startswith(_TAG_QUEUE):
            queue.append(line[2:])
        elif line.startswith(_TAG_CONTROL):
            control.append(line[2:])
        elif line.startswith(_TAG_ACCOUNTING):
            parts = line[2:].strip().split("|")
            if len(parts) == 3 and parts[0]:
                accounting[parts[0]] = (parts[1], parts[2])
    return PollResult(
        parse_squeue("\n".join(queue)), parse_scontrol("\n".join(control)), accounting
    )


# SLURM's pending reasons, in words a user can act on (`squeue --help` lists them all).
_WAITING = {
    "Priority": "waiting behind higher-priority jobs",
    "Resources": "waiting for free resources",
    "Dependency": "waiting for a dependency",
    "QOSMaxJobsPerUserLimit": "user's job limit of the QOS reached",
    "PartitionTimeLimit": "timeout_minutes exceeds the partition's time limit",
    "ReqNodeNotAvail": "the requested nodes are not available",
    "BeginTime": "waiting for its start time",
    "JobHeldUser": "held by the user",
    "JobHeldAdmin": "held by an administrator",
}


def waiting_reason(reason: str) -> str:
    """``Resources`` -> ``waiting for free resources (Resources)``: SLURM's word kept."""
    words = _WAITING.get(reason.split(",")[0].strip())
    return f"{words} ({reason})" if words else reason


def parse_sbatch_id(text: str) -> str | None:
    """``sbatch --parsable`` prints ``id`` or ``id;cluster``."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    job_id = first.split(";")[0].strip()
    return job_id if job_id.isdigit() else None


# stderr of sbatch/scancel that means "try again later", not "this job is wrong"
_UNAVAILABLE = (
    "Unable to contact slurm controller",
    "Socket timed out",
    "Connection refused",
    "Zero Bytes were transmitted",
    "Slurm temporarily unable",
)


def is_transient_error(stderr: str) -> bool:
    return any(marker.lower() in stderr.lower() for marker in _UNAVAILABLE)


# -- accelerators ------------------------------------------------------------------------

SINFO_COMMAND = "sinfo -h -o '%P|%G|%D'"
# Commas inside a gres item's parentheses (its socket list, ``(S:0,2)``) do not split items.
_GRES_ITEMS = re.compile(r",(?![^(]*\))")
_GRES_COUNT = re.compile(r"(\d+)([KMGTP]?)")
_UNITS = "KMGTP"


def parse_sinfo(text: str) -> list[Accelerator]:
    """``gpu|gpu:a100:4(S:0-1)|8`` -> ``Accelerator("a100", 4, "gpu", nodes=8)``.

    ``%G`` lists what each node of the group has, so ``count`` is per node; a group with no
    GPU gres (``(null)``, ``mps:100``) is ``cpu``. ``*`` marks the default partition.
    Groups of one partition that come out alike are added up.
    """
    nodes: dict[tuple[str, str, int], int] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 3 or not parts[0] or not parts[2].strip().isdigit():
            continue
        partition = parts[0].rstrip("*")
        gpus = gres_gpus(parts[1]) or {CPU: 0}
        for name, count in gpus.items():
            key = (partition, name, count)
            nodes[key] = nodes.get(key, 0) + int(parts[2])
    return [Accelerator(name, count, where, n) for (where, name, count), n in sorted(nodes.items())]


def gres_gpus(gres: str) -> dict[str, int]:
    """GPUs per node by type from a gres list: ``gpu:a100:4(S:0-1),gpu:v100:2,mps:200`` ->
    ``{"a100": 4, "v100": 2}``; an untyped ``gpu:4`` is ``{"gpu": 4}``; ``(null)`` is ``{}``."""
    found: dict[str, int] = {}
    for item in _GRES_ITEMS.split(gres.strip()):
        fields = [f for f in item.split("(", 1)[0].strip().split(":") if f != "no_consume"]
        if fields[0] != "gpu" or len(fields) < 2:
            continue
        count = _gres_count(fields[-1])
        if count:
            name = fields[1] if len(fields) > 2 else UNTYPED_GPU
            found[name] = found.get(name, 0) + count
    return found


def _gres_count(text: str) -> int:
    """``4`` -> 4; SLURM prints large counts with a suffix (``2K`` = 2048)."""
    match = _GRES_COUNT.fullmatch(text.strip())
    if match is None:
        return 0
    number, unit = match.groups()
    return int(number) * 1024 ** (_UNITS.index(unit) + 1) if unit else int(number)


def addresses_command(files: Mapping[str, str]) -> str:
    """One shell line reading each server's ``<node> <port>`` file (run name -> path) and
    the node's address as SLURM knows it (``NodeAddr``; the node name when it has none).
    Prints ``<run name> <address> <port>`` per server that has written its file."""
    parts = [
        f"if read node port < {shlex.quote(path)} 2>/dev/null; then "
        "addr=$(scontrol show node -o \"$node\" 2>/dev/null | tr ' ' '\\n' "
        "| sed -n 's/^NodeAddr=//p'); "
        f'printf \'%s %s %s\\n\' {shlex.quote(name)} "${{addr:-$node}}" "$port"; fi'
        for name, path in files.items()
    ]
    return "; ".join(parts) + "; true"


_NODE_ADDRESS = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*|[0-9A-Fa-f:]+")


def parse_addresses(text: str) -> dict[str, tuple[str, int]]:
    """``addresses_command``'s lines as run name -> (address, port). Lines that are not a
    host name or IP address and a port (a workload writes the file) are skipped."""
    found: dict[str, tuple[str, int]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 3 or not fields[2].isdigit() or not 0 < int(fields[2]) < 65536:
            continue
        if _NODE_ADDRESS.fullmatch(fields[1]):
            found[fields[0]] = (fields[1], int(fields[2]))
    return found
