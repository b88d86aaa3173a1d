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
PATH_SCHEMES = ("file", "lustre")
OBJECT_SCHEMES = ("aws", "seaweedfs")
URL_SCHEMES = ("https", "http")


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
    if scheme in PATH_SCHEMES:
        return Source(slot, field, "path", "/" + rest.lstrip("/"))
    if scheme in OBJECT_SCHEMES:
        bucket, _, key = rest.partition("/")
        return Source(slot, field, "object", key.strip("/"), bucket)
    return Source(slot, field, "url", value)


def environment(dirs: Mapping[str, str], slots: list[Source]) -> dict[str, str]:
    """The ``JY_*_DATASET_DIR(S)`` variables for the directories each slot ended up in."""
    env: dict[str, list[str]] = {}
    for source in slots:
        _, variable = FIELDS[source.field]
        env.setdefault(variable, []).append(dirs[source.slot])
    return {k: os.pathsep.join(v) for k, v in env.items()}
