"""The digits data set, and its deterministic train/val split.

By default the data travels with the code (``workloads/data/digits.csv.gz``) so a job
never downloads anything at run time. A job given a dataset reads ``digits.csv.gz`` (or
``digits.csv``) from the first directory in ``JY_TRAIN_DATASET_DIRS`` instead, which
jobyard fills before the run starts (the workload contract, workloads/README.md).

The split uses a fixed seed of its own, independent of the training
``seed``, so that evaluate and inference jobs see exactly the validation rows their parent
train job held out, as long as they use the same ``val_split``.
"""

from __future__ import annotations

import gzip
import io
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DATA_FILE = "digits.csv.gz"
IMAGE_SHAPE = (8, 8)
N_FEATURES = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
CLASSES = tuple(range(10))
PIXEL_MAX = 16.0
# Pixels are integers 0..16; dividing by 16 maps them onto [0, 1].
SCALE = 1.0 / PIXEL_MAX
SPLIT_SEED = 1998


@dataclass(frozen=True)
class Split:
    """Normalised features and labels, split into train and validation parts.

    ``train_index``/``val_index`` are row numbers in the original file, so predictions can be
    traced back to the exact image.
    """

    x_train: FloatArray
    y_train: IntArray
    x_val: FloatArray
    y_val: IntArray
    train_index: IntArray
    val_index: IntArray


DATASET_DIRS_ENV = "JY_TRAIN_DATASET_DIRS"


def source() -> tuple[str, bytes]:
    """(where the data comes from, its CSV text as bytes): the staged dataset if the job
    has one, else the packaged file."""
    dirs = [d for d in os.environ.get(DATASET_DIRS_ENV, "").split(os.pathsep) if d]
    if dirs:
        first = Path(dirs[0])
        if (first / DATA_FILE).is_file():
            return str(first / DATA_FILE), gzip.decompress((first / DATA_FILE).read_bytes())
        if (first / "digits.csv").is_file():
            return str(first / "digits.csv"), (first / "digits.csv").read_bytes()
        raise ValueError(f"{first}: no {DATA_FILE} or digits.csv in the training dataset")
    blob = resources.files("jobyard.workloads").joinpath("data", DATA_FILE).read_bytes()
    return f"packaged {DATA_FILE}", gzip.decompress(blob)


@lru_cache(maxsize=1)
def _loaded() -> tuple[str, FloatArray, IntArray]:
    where, text = source()
    table = np.loadtxt(io.StringIO(text.decode("ascii")), delimiter=",")
    if table.ndim != 2 or table.shape[1] != N_FEATURES + 1:
        raise ValueError(f"{where}: expected {N_FEATURES + 1} columns, got {table.shape}")
    pixels = table[:, :N_FEATURES].astype(np.float64)
    labels = table[:, N_FEATURES].astype(np.int64)
    pixels.setflags(write=False)
    labels.setflags(write=False)
    return where, pixels, labels


def _raw() -> tuple[FloatArray, IntArray]:
    _, pixels, labels = _loaded()
    return pixels, labels


def origin() -> str:
    """Where the rows came from, for the log."""
    return f"{_loaded()[0]} ({len(_loaded()[2])} rows)"


def load_digits() -> tuple[FloatArray, IntArray]:
    """All 1797 images as (n, 64) floats in [0, 1] and their labels 0..9."""
    pixels, labels = _raw()
    return normalise(pixels), labels.copy()


def normalise(pixels: FloatArray) -> FloatArray:
    """Raw pixel values 0..16 -> [0, 1]; exported models record ``SCALE`` so users can repeat it."""
    return np.asarray(pixels, dtype=np.float64) * SCALE


def split_indices(labels: IntArray, val_split: float) -> tuple[IntArray, IntArray]:
    """Stratified split: ``val_split`` of each class goes to validation, the rest to training.

    Stratifying keeps every class represented in the validation set even for small splits;
    the fixed ``SPLIT_SEED`` makes the split a pure function of ``val_split``.
    """
    if not 0.0 < val_split < 1.0:
        raise ValueError(f"val_split must be in (0, 1), got {val_split}")
    rng = np.random.default_rng(SPLIT_SEED)
    val_parts: list[IntArray] = []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_val = max(1, round(len(members) * val_split))
        val_parts.append(members[:n_val].astype(np.int64))
    val_index = np.sort(np.concatenate(val_parts))
    train_index = np.setdiff1d(np.arange(len(labels), dtype=np.int64), val_index)
    return train_index.astype(np.int64), val_index.astype(np.int64)


def load_split(val_split: float) -> Split:
    """The normalised data set split for training (``val_split`` held out for validation)."""
    x, y = load_digits()
    train_index, val_index = split_indices(y, val_split)
    return Split(
        x_train=x[train_index],
        y_train=y[train_index],
        x_val=x[val_index],
        y_val=y[val_index],
        train_index=train_index,
        val_index=val_index,
    )
