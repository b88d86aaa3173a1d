"""The reference workload's catalog entries, as plain data.

jobyard seeds its catalog with these entries: every field is data (the command, the image,
per-action default specs and JSON Schemas), so the engine runs them exactly as it would
run anyone's code.
"""

from __future__ import annotations

from typing import Any

from jobyard.workloads import specs

DERIVED_PARENTS = ["train"]


def reference_entry() -> dict[str, Any]:
    return {
        "name": "digits_mlp",
        "network_arch": "classification_pyt",
        "ngc_path": "jobyard/classification_pyt:digits_mlp_v1",
        "description": (
            "Reference workload: an MLP image classifier trained on the packaged digits set."
        ),
        "kind": "experiment",
        "status_protocol": "jobyard",
        "command": ["{python}", "-m", "jobyard.workloads.classifier"],
        "image": "jobyard:latest",
        "metric": "val_accuracy",
        "actions": {
            action: {
                "default_spec": specs.default_spec(action),
                "json_schema": specs.json_schema(action),
                "parents": [] if action == "train" else DERIVED_PARENTS,
            }
            for action in specs.ACTIONS
        },
    }


def reference_entries() -> list[dict[str, Any]]:
    return [reference_entry()]
