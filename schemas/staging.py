"""Where a job's datasets come from, and how the workload is told where they are: pure
functions over the job document (seed 000: datasets are given by URI or by dataset id).

Each dataset field becomes one *slot* (``train-0``, ``train-1``, ``eval``, ...). A slot's
source is a path the run's machines see (``/abs``, ``file://``, ``lustre://``: passed as
is), an object prefix in the job's workspace bucket (``aws://``, ``seaweedfs://``), a
public ``https://`` file, or a dataset id (resolved through the datasets API).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# job field -> (role, environment variable the workload reads)
FIELDS = {
    "train_dataset_uris": ("train", "JY_TRAIN_DATASET_DIRS"),
    "eval_dataset_uri": ("eval", "JY_EVAL_DATASET_DIR"),
    "inference_dataset_uri": ("inference", "JY_INFERENCE_DATASET_DIR"),
    "calibration_dataset_uri": ("calibration", "JY_CALIBRATION_DATASET_DIR"),
}
# A train job whose base experiment is a published model (schemas/models.py) gets its
# weights staged like a dataset, and is told where the checkpoint is in this variable.
PRETRAINED_VARIABLE = "JY_PRETRAINED_CHECKPOINT"
PRETRAINED_ACTIONS = ("train", "retrain")
# The one table of dataset URI schemes: job validation and staging both read it.
# scheme -> how a run gets the data: "path" (its machines see it as is), "object" (copied
# from the job's workspace bucket) or "url" (fetched over HTTP).
SCHEMES: dict[str, str] = {
    "file": "path",
    "lustre": "path",
    "aws": "object",
    "seaweedfs": "object",
    "https": "url",
    "http": "url",
}
# Schemes TAO documents that jobyard cannot fetch yet: refused when the job is created.
NOT_FETCHABLE: dict[str, str] = {
    "azure": "Azure Blob storage is not supported yet",
    "gs": "Google Cloud Storage is not supported yet",
    "hf": "Hugging Face datasets are not supported yet",
}


def scheme_problem(value: str) -> str | None:
    """Why jobyard cannot read the dataset URI ``value``; None when it can."""
    scheme, sep, rest = value.partition("://")
    if not sep:
        return None  # an absolute path or a dataset id, told apart by ``classify``
    if scheme in NOT_FETCHABLE:
        return f"{scheme}:// cannot be read: {NOT_FETCHABLE[scheme]} (readable: {_readable()})"
    if scheme not in SCHEMES:
        return f"unknown scheme {scheme}:// (readable: {_readable()})"
    if not rest.strip("/"):
        return f"{scheme}:// needs a location after it"
    return None


def _readable() -> str:
    return ", ".join(f"{s}://" for s in SCHEMES)


@dataclass(frozen=True)
class Source:
    slot: str  # train-0, eval, ...
    field: str  # the job field it came from
    kind: str  # "path" | "object" | "url" | "dataset"
    value: str  # path, key prefix, URL or dataset id
    bucket: str = ""  # "object" from a URI: the bucket it names
    workspace: str = ""  # "object" from a dataset: the dataset's workspace


def sources(job: Mapping[str, Any]) -> list[Source]:
    found = []
    for field, (role, _) in FIELDS.items():
        value = job.get(field)
        values = value if isinstance(value, list) else [value] if value else []
        for index, item in enumerate(values):
            slot = f"{role}-{index}" if isinstance(value, list) else role
            found.append(classify(slot, field, str(item)))
    return found


def classify(slot: str, field: str, value: str) -> Source:
    scheme, sep, rest = value.partition("://")
    if not sep:
        if value.startswith("/"):
            return Source(slot, field, "path", value)
        return Source(slot, field, "dataset", value)
    kind = SCHEMES.get(scheme)
    if kind == "path":
        return Source(slot, field, "path", "/" + rest.lstrip("/"))
    if kind == "object":
        bucket, _, key = rest.partition("/")
        return Source(slot, field, "object", key.strip("/"), bucket)
    if kind == "url":
        return Source(slot, field, "url", value)
    raise ValueError(scheme_problem(value) or f"cannot read {value!r}")


def environment(dirs: Mapping[str, str], slots: list[Source]) -> dict[str, str]:
    """The ``JY_*_DATASET_DIR(S)`` variables for the directories each slot ended up in."""
    env: dict[str, list[str]] = {}
    for source in slots:
        _, variable = FIELDS[source.field]
        env.setdefault(variable, []).append(dirs[source.slot])
    return {k: os.pathsep.join(v) for k, v in env.items()}
