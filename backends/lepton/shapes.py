"""A workspace's node groups and their resource shapes as accelerators, as pure functions.

The calls are the ones ``lep node resource-shape --purpose job`` makes (``leptonai`` 0.47):
``GET /dedicated-node-groups`` lists the node groups, then ``GET /shapes?node_groups=<id>&
purpose=job`` each one's shapes. A GPU shape's name holds what a job names: ``gpu.8xh100-sxm``
is ``gpu_type`` h100-sxm with 8 GPUs, the name ``render.resource_shape`` builds back from
``gpu_type`` and ``num_gpus``; ``cpu.*`` shapes are ``cpu``. Shapes named otherwise cannot be
asked for through ``gpu_type`` and are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from jobyard.backends.base import CPU, Accelerator

PURPOSE = "job"
_GPU_SHAPE = re.compile(r"gpu\.(?:(\d+)x)?([a-z0-9][a-z0-9-]*)")

Obj = Mapping[str, Any]


def group_id(group: Obj) -> str:
    return str((group.get("metadata") or {}).get("id") or "")


def group_names(group: Obj) -> set[str]:
    """What a workspace's ``lepton_node_group`` may call the group: its id or its name."""
    metadata = group.get("metadata") or {}
    return {str(metadata[k]) for k in ("id", "name") if metadata.get(k)}


def shape_offer(shape: Obj) -> tuple[str, int] | None:
    """(accelerator name, GPUs) a job shape gives; None for a shape jobs cannot use or
    ``gpu_type`` cannot name."""
    spec = shape.get("spec") or {}
    metadata = shape.get("metadata") or {}
    if PURPOSE not in {str(p).lower() for p in spec.get("listable_in") or ()}:
        return None
    name = str(spec.get("name") or metadata.get("name") or metadata.get("id") or "").lower()
    if name.startswith(f"{CPU}."):
        return CPU, 0
    match = _GPU_SHAPE.fullmatch(name)
    if match is None:
        return None
    number = spec.get("accelerator_num")
    if isinstance(number, int | float) and number >= 1:
        return match.group(2), int(number)
    return match.group(2), int(match.group(1) or 1)


def group_accelerators(group: Obj, shapes: Iterable[Obj]) -> list[Accelerator]:
    """One entry per accelerator name: the largest shape of it (one node's worth), on the
    group's ready nodes, where the group's id (what a job's ``platform_id`` names)."""
    metadata = group.get("metadata") or {}
    where = str(metadata.get("id") or metadata.get("name") or "?")
    ready = (group.get("status") or {}).get("ready_nodes")
    nodes = ready if isinstance(ready, int) and ready >= 0 else 0
    best: dict[str, int] = {}
    for shape in shapes:
        offer = shape_offer(shape)
        if offer is not None:
            best[offer[0]] = max(best.get(offer[0], 0), offer[1])
    return [Accelerator(name, count, where, nodes) for name, count in sorted(best.items())]
