"""The layout of a job's results directory and the checkpoint bookkeeping in it.

Train writes ``checkpoints/epoch_NNN.npz``, ``model_latest.npz`` (what a resumed run loads)
and ``model_best.npz`` (highest validation accuracy, what evaluate/export/inference load).
Keeping these names in one place keeps the trainer and its consumers in agreement.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from jobyard.workloads.status import jsonable

CHECKPOINT_DIR = "checkpoints"
LATEST = "model_latest.npz"
BEST = "model_best.npz"
TRAIN_SUMMARY = "train_summary.json"
_EPOCH_FILE = re.compile(r"^epoch_(\d+)\.npz$")


def epoch_checkpoint(epoch: int) -> str:
    """Results-relative path of the checkpoint recording ``epoch`` completed epochs."""
    return f"{CHECKPOINT_DIR}/epoch_{epoch:03d}.npz"


def epoch_checkpoints(results_dir: Path) -> list[tuple[int, Path]]:
    """Existing ``checkpoints/epoch_NNN.npz`` files as (epoch, path), oldest first."""
    folder = results_dir / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _EPOCH_FILE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def prune_epoch_checkpoints(results_dir: Path, keep: str) -> list[str]:
    """Delete every epoch checkpoint except ``keep`` (results-relative); returns what went."""
    removed = []
    for _, path in epoch_checkpoints(results_dir):
        relative = path.relative_to(results_dir).as_posix()
        if relative != keep:
            path.unlink(missing_ok=True)
            removed.append(relative)
    return removed


def parent_model(parent_results_dir: Path | None, chosen: Path | None = None) -> Path:
    """The model a follow-up action uses: ``chosen`` (``JY_PARENT_CHECKPOINT``) when jobyard
    picked one, else the parent's best, else its latest checkpoint.

    Raises ``FileNotFoundError`` with a message that says what was looked for and where.
    """
    if chosen is not None:
        if not chosen.is_file():
            raise FileNotFoundError(
                f"JY_PARENT_CHECKPOINT={chosen}: no such file (the parent checkpoint jobyard "
                "chose is missing)"
            )
        return chosen
    if parent_results_dir is None:
        raise FileNotFoundError(
            "JY_PARENT_RESULTS_DIR is not set: this action needs a parent train job's results"
        )
    for name in (BEST, LATEST):
        candidate = parent_results_dir / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no trained model in parent results dir {parent_results_dir}: "
        f"neither {BEST} nor {LATEST} exists (did the parent train job run?)"
    )


def write_text(path: Path, text: str) -> None:
    """Write a file atomically (temp file + rename) so readers never see half of it."""
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: Path, content: bytes) -> None:
    """``write_text`` for bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, payload: dict[str, Any], *, indent: int | None = 2) -> None:
    """Write a JSON document atomically; NaN/inf become null so the file is strict JSON."""
    text = json.dumps(jsonable(payload), indent=indent, sort_keys=indent is not None)
    write_text(path, text + "\n")
