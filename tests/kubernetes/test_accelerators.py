"""The backend's accelerators from the API server double's nodes, through the official
client: GPU feature discovery's product label, the allocatable count, the node selector."""

from __future__ import annotations

import pytest

from jobyard.backends.base import Accelerator
from jobyard.backends.errors import BackendUnavailable, SubmitRejected
from jobyard.backends.kubernetes.backend import KubernetesBackend
from tests.kubernetes.fake_k8s import Node

pytestmark = pytest.mark.integration

A100 = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB", "pool": "train"}
CLUSTER = [
    Node("gpu-a100-0", labels=A100, gpus=8),
    Node("gpu-a100-1", labels=A100, gpus=8, unschedulable=True),
    Node("gpu-t4-0", labels={"nvidia.com/gpu.product": "Tesla-T4", "pool": "infer"}, gpus=1),
    Node("cpu-0", labels={"pool": "train"}),
]


def node_lists(fake):
    return [r for r in fake.requests if r.method == "GET" and r.path == "/api/v1/nodes"]


@pytest.mark.parametrize("nodes", [CLUSTER])
def test_one_list_of_nodes_gives_each_schedulable_nodes_gpus(backend, fake):
    assert backend.accelerators() == [
        Accelerator("cpu", 0, "cpu-0"),
        Accelerator("a100-sxm4-80gb", 8, "gpu-a100-0"),  # its cordoned twin takes no pods
        Accelerator("t4", 1, "gpu-t4-0"),
    ]
    assert len(node_lists(fake)) == 1


@pytest.mark.parametrize("nodes", [CLUSTER])
def test_only_nodes_the_node_selector_lets_pods_onto_count(kube_settings, fake):
    settings = kube_settings.replace(kubernetes_node_selector="pool=train")
    backend = KubernetesBackend.from_config(settings, {})
    try:
        found = backend.accelerators()
    finally:
        backend.close()
    assert [a.where for a in found] == ["cpu-0", "gpu-a100-0"]
    assert node_lists(fake)[0].query == {"labelSelector": "pool=train"}


MIG = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"}
MIG_RESOURCE = "nvidia.com/mig-1g.5gb"


@pytest.mark.parametrize("nodes", [[Node("mig-0", labels=MIG, resources={MIG_RESOURCE: "7"})]])
def test_the_configured_gpu_resource_is_the_one_counted(kube_settings):
    settings = kube_settings.replace(kubernetes_gpu_resource=MIG_RESOURCE)
    backend = KubernetesBackend.from_config(settings, {})
    try:
        assert backend.accelerators() == [Accelerator("a100-sxm4-40gb-mig-1g.5gb", 7, "mig-0")]
    finally:
        backend.close()


def test_the_default_node_is_a_cpu_node(backend):
    assert backend.accelerators() == [Accelerator("cpu", 0, "fake-node")]


def test_rejected_credentials_are_a_permanent_error_that_says_so(fake, tmp_path, kube_settings):
    kubeconfig = fake.write_kubeconfig(tmp_path, token="wrong-token")
    settings = kube_settings.replace(kubernetes_kubeconfig=kubeconfig)
    backend = KubernetesBackend.from_config(settings, {})
    try:
        with pytest.raises(SubmitRejected, match=r"list nodes: .*401 Unauthorized") as refused:
            backend.accelerators()
    finally:
        backend.close()
    assert "wrong-token" not in str(refused.value)


def test_an_unreachable_api_server_is_transient(backend, fake):
    fake.stop()
    with pytest.raises(BackendUnavailable, match="list nodes: cannot reach"):
        backend.accelerators()
