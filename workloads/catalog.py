"""The reference workload's catalog entry, as plain data.

jobyard seeds its catalog with this entry: every field is data (the command, the image,
per-action default specs and JSON Schemas), so the engine runs it exactly as it would
run anyone's code.
"""

from __future__ import annotations

from typing import Any

from jobyard.workloads import specs


def reference_entry() -> dict[str, Any]:
    return {
        "name": "digits_mlp",
        "network_arch": "classification_pyt",
        "ngc_path": "jobyard/classification_pyt:digits_mlp_v1",
        "description": (
            "Reference workload: an MLP image classifier trained on the packaged digits set."
        ),
        "actions": list(specs.ACTIONS),
        "command": ["python", "-m", "jobyard.workloads.classifier"],
        "image": "jobyard:latest",
        "default_specs": {action: specs.default_spec(action) for action in specs.ACTIONS},
        "json_schemas": {action: specs.json_schema(action) for action in specs.ACTIONS},
    }
