"""Node objects (the API's JSON, as dicts) to accelerators, as pure functions.

NVIDIA's GPU feature discovery labels each GPU node with its product
(``nvidia.com/gpu.product: NVIDIA-A100-SXM4-80GB``) and the device plugin makes the GPUs
allocatable (``status.allocatable["nvidia.com/gpu"]``, or the resource jobyard is
configured to request). A node with GPUs allocatable but no product label counts as
``gpu``; a node with none is ``cpu``; a cordoned node takes no new pods and is left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from jobyard.backends.base import CPU, UNTYPED_GPU, Accelerator

PRODUCT_LABEL = "nvidia.com/gpu.product"
_VENDOR = re.compile(r"^(?:(?:nvidia|tesla)-)+")


def gpu_name(product: str) -> str:
    """The product label as a short name: ``NVIDIA-A100-SXM4-80GB`` -> ``a100-sxm4-80gb``,
    ``Tesla-T4`` -> ``t4``; "" for no label."""
    name = "-".join(product.strip().lower().split())
    return _VENDOR.sub("", name)


def quantity(value: Any) -> int:
    """A device count as the API writes it (``"4"``); extended resources are whole numbers,
    so anything else (a missing or malformed value) is no device."""
    try:
        return max(0, int(str(value)))
    except ValueError:
        return 0


def node_accelerators(nodes: Iterable[Mapping[str, Any]], gpu_resource: str) -> list[Accelerator]:
    """One entry per schedulable node, sorted by node name."""
    found = []
    for node in nodes:
        if (node.get("spec") or {}).get("unschedulable"):
            continue
        metadata = node.get("metadata") or {}
        where = str(metadata.get("name") or "?")
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        count = quantity(allocatable.get(gpu_resource))
        if not count:
            found.append(Accelerator(CPU, 0, where))
            continue
        product = str((metadata.get("labels") or {}).get(PRODUCT_LABEL) or "")
        found.append(Accelerator(gpu_name(product) or UNTYPED_GPU, count, where))
    return sorted(found, key=lambda a: a.where)
