"""The API server double's nodes, as kubelets register them and keep them up to date:
labels (the kubelet's own and any a test gives, such as GPU feature discovery's), allocatable
resources (GPUs as the NVIDIA device plugin advertises them), and cordoning."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GPU = "nvidia.com/gpu"
Obj = dict[str, Any]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Node:
    """One node: ``labels`` beside the ones every kubelet sets, ``gpus`` allocatable as
    ``nvidia.com/gpu`` (what the device plugin advertises), ``resources`` further
    allocatable resources, ``unschedulable`` as after ``kubectl cordon``."""

    name: str = "fake-node"
    labels: dict[str, str] = field(default_factory=dict)
    gpus: int = 0
    resources: dict[str, str] = field(default_factory=dict)
    unschedulable: bool = False

    @property
    def all_labels(self) -> dict[str, str]:
        kubelet = {
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
        }
        return {**kubelet, **self.labels}

    def allocatable(self) -> dict[str, str]:
        found = {
            "cpu": "8",
            "ephemeral-storage": "95551679124",
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
            "memory": "32781388Ki",
            "pods": "110",
        }
        if self.gpus:
            found[GPU] = str(self.gpus)
        return {**found, **self.resources}


def node_object(node: Node, uid: str, resource_version: str) -> Obj:
    """The v1 Node a kubelet registers and keeps up to date, as the API serves it."""
    allocatable = node.allocatable()
    spec: Obj = {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]}
    if node.unschedulable:
        spec["unschedulable"] = True
        spec["taints"] = [
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": now()}
        ]
    pressure = [
        ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ]
    conditions = [
        {
            "type": kind,
            "status": "False",
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now(),
            "lastTransitionTime": now(),
        }
        for kind, reason, message in pressure
    ]
    conditions.append(
        {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": now(),
            "lastTransitionTime": now(),
        }
    )
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": node.name,
            "uid": uid,
            "resourceVersion": resource_version,
            "creationTimestamp": now(),
            "labels": node.all_labels,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": spec,
        "status": {
            "capacity": {**allocatable, "memory": "32883788Ki"},
            "allocatable": allocatable,
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": "10.0.0.1"},
                {"type": "Hostname", "address": node.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": uid.replace("-", ""),
                "systemUUID": uid,
                "bootID": uid,
                "kernelVersion": "6.1.0-fake-amd64",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "containerd://1.7.20",
                "kubeletVersion": "v1.31.0",
                "kubeProxyVersion": "v1.31.0",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }
