"""Render the batch script that runs one jobyard run under SLURM, as a pure function.

The script follows the workload contract (workloads/README.md): it exports the ``JY_*``
variables and then ``exec``s the command, so the workload *is* the batch shell and receives
the SIGTERM that ``scancel --signal=TERM --full`` sends (plain ``--signal`` reaches no batch
script). No exit-code file is written: ``scontrol show job`` reports ``ExitCode``.
"""

from __future__ import annotations

import math
import posixpath
import re
import shlex
from collections.abc import Mapping

from jobyard.backends import contract
from jobyard.backends.base import RunSpec
from jobyard.backends.contract import LOG_FILE
from jobyard.backends.errors import SubmitRejected

# A model server's port is picked on the node it lands on (``JY_SERVE_PORT=0`` asks for
# that); the script writes "<node> <port>" here for the backend to read (``serving_addresses``).
SERVING_ADDRESS_FILE = "serving.addr"
_PICK_PORT = "import socket; s = socket.socket(); s.bind(('', 0)); print(s.getsockname()[1])"

# #SBATCH lines are not shell: sbatch splits them itself and its quoting rules differ from
# the shell's. Values that go there are therefore restricted to characters needing no quotes.
_DIRECTIVE_SAFE = re.compile(r"[A-Za-z0-9._/+=:@%,-]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def time_limit_minutes(timeout_seconds: float) -> int:
    """SLURM counts whole minutes: round up, and never ask for 0 (which means no limit)."""
    return max(1, math.ceil(timeout_seconds / 60))


def gres(options: Mapping[str, object]) -> str | None:
    """``--gres`` from backend_details: ``num_gpus`` and, if given, ``gpu_type``."""
    count = options.get("num_gpus")
    if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
        return None
    kind = options.get("gpu_type")
    return f"gpu:{kind}:{count}" if kind else f"gpu:{count}"


def cluster_paths(spec: RunSpec, *, results_dir: str, run_dir: str) -> contract.RunPaths:
    """The contract's paths as the cluster's nodes see them."""
    return contract.run_paths(
        results_dir, run_dir, contract.parent_results_dir(spec), spec.spec_format
    )


def workload_env(spec: RunSpec, *, results_dir: str, run_dir: str) -> dict[str, str]:
    """The contract as the cluster's nodes see it (``backends.contract``)."""
    return contract.environment(spec, cluster_paths(spec, results_dir=results_dir, run_dir=run_dir))


def render_sbatch(
    spec: RunSpec,
    *,
    results_dir: str,
    run_dir: str,
    partition: str | None,
    python: str,
    grace_seconds: float = 0.0,
) -> str:
    """The batch script for ``spec``; deterministic, so golden files can pin it down.

    ``--time`` is the job's timeout plus the grace period: jobyard stops a run that reaches
    ``timeout_minutes`` itself (SIGTERM, checkpoint, then a kill after the grace period), and
    SLURM's limit is only the backstop should jobyard be down, so it must not race that.
    ``--no-requeue``: after a node failure jobyard resubmits the job as a new run that
    resumes from its checkpoint, visible in the job's history, instead of SLURM silently
    restarting the same run from scratch over the same status file and log offsets.
    A model server has no ``--time``: it runs until stopped or idle, within the partition's
    own limit (jobyard restarts one SLURM ends there).
    """
    results_dir = results_dir.rstrip("/") or "/"
    run_dir = run_dir.rstrip("/") or "/"
    serves = spec.env.get("JY_SERVE_PORT") == "0"
    log = f"{run_dir}/{LOG_FILE}"
    directives: list[tuple[str, str | None]] = [
        ("job-name", spec.name),
        ("partition", partition),
        ("time", None if serves else str(time_limit_minutes(spec.timeout_seconds + grace_seconds))),
        ("ntasks", "1"),
        ("gres", gres(spec.options)),
        ("chdir", results_dir),
        ("output", log),
        ("error", log),
        ("open-mode", "append"),
        ("no-requeue", None),
    ]
    lines = ["#!/bin/bash", *_directives(spec.name, directives)]
    lines.append(f"# jobyard run {spec.name}: generated, do not edit")
    paths = cluster_paths(spec, results_dir=results_dir, run_dir=run_dir)
    lines += _exports(spec.name, contract.environment(spec, paths))
    link = contract.status_link(spec, paths, python)
    if link is not None:  # a tao workload's own status file: this run's, from its start
        where, target = link
        lines.append(f"mkdir -p {shlex.quote(posixpath.dirname(where))}")
        lines.append(f"ln -sfn {shlex.quote(target)} {shlex.quote(where)}")
    if serves:
        address = shlex.quote(f"{run_dir}/{SERVING_ADDRESS_FILE}")
        lines.append(f"export JY_SERVE_PORT=$({shlex.quote(python)} -c {shlex.quote(_PICK_PORT)})")
        lines.append(f'printf \'%s %s\\n\' "$SLURMD_NODENAME" "$JY_SERVE_PORT" > {address}')
    lines.append(f"exec {shlex.join(contract.argv(spec, paths, python))}")
    return "\n".join(lines) + "\n"


_OPTIONAL = frozenset({"partition", "gres", "time"})


def _directives(name: str, directives: list[tuple[str, str | None]]) -> list[str]:
    lines = []
    for option, value in directives:
        if option in _OPTIONAL and value is None:
            continue
        if value is None:
            lines.append(f"#SBATCH --{option}")
            continue
        if not _DIRECTIVE_SAFE.fullmatch(value):
            raise SubmitRejected(f"run {name}: --{option}={value!r} has characters sbatch mangles")
        lines.append(f"#SBATCH --{option}={value}")
    return lines


def _exports(name: str, env: Mapping[str, str]) -> list[str]:
    lines = []
    for key in sorted(env):
        if not _ENV_NAME.fullmatch(key):
            raise SubmitRejected(f"run {name}: {key!r} is not an environment variable name")
        lines.append(f"export {key}={shlex.quote(env[key])}")
    return lines
