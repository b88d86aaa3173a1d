"""Which of a job's result files are models, and which model is its best, its latest or
that of an epoch: pure functions over the paths in its results directory (relative,
"/"-separated), shared by downloads (``:download_selective_files``), ``:get_epoch_numbers``
and derived jobs choosing their parent's checkpoint."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

BEST = re.compile(r"(^|[/_.-])(model_best|best_model)([._-]|$)")
LATEST = re.compile(r"(^|[/_.-])(model_latest|latest_model)([._-]|$)")
EPOCH = re.compile(r"epoch[_-]?(\d+)")
MODEL_SUFFIXES = (
    ".npz",
    ".pth",
    ".pt",
    ".ckpt",
    ".tlt",
    ".hdf5",
    ".h5",
    ".onnx",
    ".safetensors",
    ".engine",
)


def _is_model(path: str) -> bool:
    return path.endswith(MODEL_SUFFIXES)


def model_files(paths: Iterable[str]) -> list[str]:
    """The checkpoints and model files among a run's result paths."""
    return [p for p in paths if _is_model(p)]


def best_model(paths: Sequence[str]) -> str | None:
    found = sorted(p for p in paths if _is_model(p) and BEST.search(posixpath.basename(p)))
    return found[0] if found else None


def latest_model(paths: Sequence[str]) -> str | None:
    """``model_latest.*`` if the workload keeps one, else the highest-epoch checkpoint."""
    named = sorted(p for p in paths if _is_model(p) and LATEST.search(posixpath.basename(p)))
    if named:
        return named[0]
    epochs = epoch_models(paths)
    return epochs[max(epochs)] if epochs else None


def epoch_of(path: str) -> int | None:
    """The epoch a checkpoint's name carries (``epoch_003.npz``, ``model_epoch_012.pth``)."""
    found = EPOCH.search(posixpath.basename(path)) if _is_model(path) else None
    return int(found.group(1)) if found else None


def epoch_models(paths: Sequence[str]) -> dict[int, str]:
    """Epoch -> its checkpoint (the first in sorted order when several name one epoch)."""
    found: dict[int, str] = {}
    for path in sorted(paths):
        epoch = epoch_of(path)
        if epoch is not None:
            found.setdefault(epoch, path)
    return found


def best_by_metric(
    paths: Sequence[str], events: Iterable[Mapping[str, Any]], metric: str, goal: str
) -> str | None:
    """The checkpoint of the epoch whose status events scored best on ``metric`` (a kpi
    value, numbers written as strings included), among the epochs that have one."""
    epochs = epoch_models(paths)
    scores: dict[int, float] = {}
    for event in events:
        kpi, epoch = event.get("kpi"), event.get("epoch")
        if not isinstance(kpi, Mapping) or not isinstance(epoch, int) or epoch not in epochs:
            continue
        try:
            scores[epoch] = float(kpi[metric])
        except (KeyError, TypeError, ValueError):
            continue
    if not scores:
        return None
    pick = max if goal == "maximize" else min
    return epochs[pick(scores, key=lambda e: (scores[e], e))]
