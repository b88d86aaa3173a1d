"""Small file helpers shared by the backend, the launcher and the Kubernetes backend.

Readers in other processes may look at any moment, so every write is atomic (a temporary
file in the same directory, then ``os.replace``): a reader sees the old file or the whole
new one, never half of it.
"""

from __future__ import annotations

import json
import os
import posixpath
from pathlib import Path
from typing import Any

from jobyard.backends import contract
from jobyard.backends.base import RunSpec
from jobyard.backends.errors import SubmitRejected


def write_json(path: Path, doc: Any) -> None:
    """Write ``doc`` as JSON to ``path`` so no reader ever sees a partial file.

    Not fsynced: a run's bookkeeping matters only while this machine is up (its
    processes do not survive a crash either), and a sync per submit costs more than the
    launch itself.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(doc), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None if the file does not exist (yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return doc


def write_run_files(
    spec: RunSpec, paths: contract.RunPaths, python: str, run_dir: Path, results_dir: Path
) -> Path:
    """The run's spec file and, for a ``tao`` workload, the link from its own status file to
    the run's, at the paths this worker sees (``run_dir``, ``results_dir``) for a run that
    sees them as ``paths`` (the same on this machine; a pod's mount elsewhere). Returns the
    spec file written."""
    specs_file = run_dir / contract.spec_file_name(spec)
    specs_file.write_text(contract.spec_text(spec, paths, python), encoding="utf-8")
    link = contract.status_link(spec, paths, python)
    if link is not None:
        where, target = link
        local = _local(where, paths.results_dir, results_dir)
        if local is None:
            raise SubmitRejected(
                f"run {spec.name}: the status file {where} is outside the results directory"
            )
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.{os.getpid()}.link")
        tmp.unlink(missing_ok=True)
        os.symlink(target, tmp)
        os.replace(tmp, local)  # over the previous run's link, atomically
    return specs_file


def _local(path: str, seen_root: str, local_root: Path) -> Path | None:
    relative = posixpath.relpath(path, seen_root)
    if relative == ".." or relative.startswith("../"):
        return None
    return local_root / relative
