"""The reference workload's catalog entries, as plain data in the catalog entry format.

jobyard seeds its catalog with these: every field is data (the command, the image, per
action the default spec, its JSON Schema and which parent actions it reads from), so the
engine runs the reference workload exactly as it would run anyone's code. Two entries:

* ``reference_entry()``: the digits MLP (``kind: experiment``): train, evaluate, export,
  inference.
* ``reference_dataset_entry()``: the digits dataset tools (``kind: dataset``): convert
  (produces a new dataset version from ``dataset/`` in its results) and validate.

An entry's id derives from its ``network_arch``, ``name`` and ``ngc_path``: they never change.
"""

from __future__ import annotations

from typing import Any

from jobyard.workloads import specs
from jobyard.workloads.datasets import OUTPUT_DIR

COMMAND = ["{python}", "-m", "jobyard.workloads.classifier"]
# No image of its own: on Kubernetes and Lepton the reference workload runs in the
# deployment's jobyard image (JOBYARD_KUBERNETES_IMAGE, the Lepton workspace's image).
IMAGE = ""
# evaluate/export/inference read the model a train job of this entry made
MODEL_PARENTS = ["train"]
DATASET_TYPES = ["image_classification"]
DATASET_FORMATS = ["classification_pyt", "raw", "custom", "default"]


def _action(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "default_spec": specs.default_spec(name),
        "json_schema": specs.json_schema(name),
        "parents": [],
        **fields,
    }


def _hyperparameters() -> list[dict[str, Any]]:
    """The train spec's tunables, ranges inside its JSON Schema's bounds, defaults its own."""
    train = specs.default_spec("train")
    return [
        {
            "name": "train.learning_rate",
            "type": "float",
            "min": 1.0e-3,
            "max": 0.5,
            "log": True,
            "default": train["train"]["learning_rate"],
            "searched": True,
        },
        {
            "name": "train.momentum",
            "type": "float",
            "min": 0.0,
            "max": 0.99,
            "default": train["train"]["momentum"],
            "searched": True,
        },
        {
            "name": "train.batch_size",
            "type": "int",
            "min": 8,
            "max": 512,
            "log": True,
            "default": train["train"]["batch_size"],
            "searched": True,
        },
        {
            "name": "train.num_epochs",
            "type": "int",
            "min": 1,
            "max": 200,
            "default": train["train"]["num_epochs"],
            # the rung algorithms set it; the others search it only when added
            "searched": False,
        },
        {
            "name": "model.hidden_size",
            "type": "int",
            "min": 8,
            "max": 512,
            "log": True,
            "default": train["model"]["hidden_size"],
            "searched": True,
        },
    ]


def reference_entry() -> dict[str, Any]:
    """The digits MLP: a one-hidden-layer numpy classifier on 8x8 digits, CPU only."""
    return {
        "network_arch": "classification_pyt",
        "name": "digits_mlp",
        "ngc_path": "jobyard/classification_pyt:digits_mlp_v1",
        "description": (
            "Reference workload: an MLP image classifier trained on the packaged digits set."
        ),
        "kind": "experiment",
        "dataset_types": DATASET_TYPES,
        "dataset_formats": DATASET_FORMATS,
        "status_protocol": "jobyard",
        "spec_format": "json",
        "image": IMAGE,
        "command": list(COMMAND),
        # train's kpi: per epoch val_accuracy and val_loss; at SUCCESS all of these
        "metric": "val_accuracy",
        "metrics": [
            "val_accuracy",
            "val_loss",
            "best_val_accuracy",
            "train_accuracy",
            "train_loss",
        ],
        "resources": {"num_gpus": 0},
        "actions": {
            "train": _action("train"),
            "evaluate": _action("evaluate", parents=list(MODEL_PARENTS)),
            "export": _action("export", parents=list(MODEL_PARENTS)),
            "inference": _action("inference", parents=list(MODEL_PARENTS)),
            # an inference microservice: the model server (workloads/server.py)
            "serve": _action(
                "serve",
                command=[*COMMAND[:2], "jobyard.workloads.server"],
                parents=list(MODEL_PARENTS),
                health_path="/health",
                inference_path="/v1/infer",
            ),
        },
        "hyperparameters": _hyperparameters(),
    }


def reference_dataset_entry() -> dict[str, Any]:
    """The digits dataset tools: convert images or CSV to the training format, validate."""
    return {
        "network_arch": "image_classification",
        "name": "digits_dataset",
        "ngc_path": "jobyard/image_classification:digits_dataset_v1",
        "description": (
            "Reference dataset actions: convert a folder of digit images or a CSV into the "
            "digits MLP's training format; validate a digits dataset."
        ),
        "kind": "dataset",
        "dataset_types": DATASET_TYPES,
        "dataset_formats": DATASET_FORMATS,
        "status_protocol": "jobyard",
        "spec_format": "json",
        "image": IMAGE,
        "command": list(COMMAND),
        "resources": {"num_gpus": 0},
        "actions": {
            "convert": _action("convert", produces_data=True, output_dir=OUTPUT_DIR),
            "validate": _action("validate"),
        },
    }


def reference_entries() -> list[dict[str, Any]]:
    """Every entry the reference workload publishes."""
    return [reference_entry(), reference_dataset_entry()]
