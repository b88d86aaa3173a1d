"""What the Kubernetes backend needs from the settings, parsed once into plain values.

Settings hold the deployment's strings (``network=image,...``, a JSON toleration list);
parsing them here keeps the manifest renderer a pure function of (run spec, config) and
turns a malformed value into a ``SubmitRejected`` that names the variable to fix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from jobyard.backends.errors import SubmitRejected
from jobyard.schemas.settings import Settings


@dataclass(frozen=True)
class KubeConfig:
    namespace: str = "default"
    instance: str = "jobyard"
    images: Mapping[str, str] = field(default_factory=dict)  # network_arch -> image
    default_image: str = "jobyard:latest"
    service_account: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    gpu_resource: str = "nvidia.com/gpu"
    results_claim: str = "jobyard-results"
    results_host_path: str | None = None
    results_mount: str = "/jobyard"  # inside the pods
    grace_seconds: int = 30
    ttl_seconds: int = 86400

    def image_for(self, network_arch: str, catalog_image: str = "") -> str:
        """The operator's image for this network if one is set, else the catalog entry's,
        else the deployment's default (the reference workload names none: it runs in the
        deployment's own jobyard image)."""
        return self.images.get(network_arch) or catalog_image or self.default_image


def parse_pairs(raw: str, variable: str) -> dict[str, str]:
    """``"a=1, b=2"`` -> ``{"a": "1", "b": "2"}``; empty -> ``{}``."""
    pairs: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise SubmitRejected(f"{variable}: expected key=value[,key=value...], got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def parse_tolerations(raw: str, variable: str) -> tuple[Mapping[str, Any], ...]:
    if not raw.strip():
        return ()
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise SubmitRejected(f"{variable}: not JSON: {e}") from e
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise SubmitRejected(f"{variable}: expected a JSON list of toleration objects")
    return tuple(value)


def from_settings(settings: Settings, namespace: str) -> KubeConfig:
    mount = settings.kubernetes_results_mount
    if not PurePosixPath(mount).is_absolute():
        raise SubmitRejected(f"JOBYARD_KUBERNETES_RESULTS_MOUNT must be absolute, got {mount!r}")
    host_path = settings.kubernetes_results_host_path
    return KubeConfig(
        namespace=namespace,
        instance=settings.kubernetes_instance,
        images=parse_pairs(settings.kubernetes_images, "JOBYARD_KUBERNETES_IMAGES"),
        default_image=settings.kubernetes_default_image,
        service_account=settings.kubernetes_service_account,
        image_pull_secrets=tuple(
            s.strip() for s in settings.kubernetes_image_pull_secrets.split(",") if s.strip()
        ),
        node_selector=parse_pairs(
            settings.kubernetes_node_selector, "JOBYARD_KUBERNETES_NODE_SELECTOR"
        ),
        tolerations=parse_tolerations(
            settings.kubernetes_tolerations, "JOBYARD_KUBERNETES_TOLERATIONS"
        ),
        gpu_resource=settings.kubernetes_gpu_resource,
        results_claim=settings.kubernetes_results_claim,
        results_host_path=str(host_path) if host_path is not None else None,
        results_mount=mount,
        # Kubernetes takes whole seconds; rounding up never cuts a checkpoint short.
        grace_seconds=math.ceil(settings.grace_period_seconds),
        ttl_seconds=settings.kubernetes_ttl_seconds,
    )
