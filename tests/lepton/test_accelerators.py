"""Accelerators from a Lepton workspace's node groups and their job shapes, on the double;
and jobs:gpu_types for an org with Lepton workspaces, one of them with a wrong token."""

from __future__ import annotations

import pytest

from jobyard.api import accelerators
from jobyard.api.services import services
from jobyard.backends.base import Accelerator
from jobyard.backends.errors import SubmitRejected
from jobyard.backends.lepton.backend import LeptonBackend
from jobyard.backends.lepton.client import LeptonClient
from jobyard.backends.lepton.config import LeptonConfig
from tests.lepton.conftest import TOKEN, WORKSPACE, lepton_workspace
from tests.lepton.fake_lepton import NodeGroup, Shape

H100 = "NVIDIA-H100-80GB-HBM3"
GROUPS = [
    NodeGroup(
        "ng-h100",
        "h100-pool",
        gpu_product=H100,
        ready_nodes=4,
        shapes=(
            Shape("cpu.small", cpu=2),
            Shape("gpu.h100-sxm", H100, 1, cpu=16),
            Shape("gpu.8xh100-sxm", H100, 8, cpu=128),
            Shape("gpu.16xh100-sxm", H100, 16, listable_in=("deployment",)),
        ),
    ),
    NodeGroup(
        "ng-a10",
        "a10-pool",
        gpu_product="NVIDIA-A10G",
        ready_nodes=2,
        shapes=(Shape("gpu.a10", "NVIDIA-A10G", 1), Shape("gpu.4xa10", "NVIDIA-A10G", 4)),
    ),
]


def backend_for(fake, node_group=None):
    client = LeptonClient(fake.url, TOKEN, WORKSPACE, timeout_seconds=10.0)
    return LeptonBackend(client, LeptonConfig(WORKSPACE, TOKEN, fake.url, node_group=node_group))


@pytest.mark.parametrize("node_groups", [GROUPS])
def test_each_node_groups_job_shapes_give_its_gpu_types(fake):
    assert backend_for(fake).accelerators() == [
        Accelerator("cpu", 0, "ng-h100", 4),
        Accelerator("h100-sxm", 8, "ng-h100", 4),  # the 16-GPU shape is not for jobs
        Accelerator("a10", 4, "ng-a10", 2),
    ]
    assert [q for _, _, q, _ in fake.calls("GET", "/shapes")] == [
        {"node_groups": "ng-h100", "purpose": "job"},
        {"node_groups": "ng-a10", "purpose": "job"},
    ]
    assert len(fake.calls("GET", "/dedicated-node-groups")) == 1


@pytest.mark.parametrize("node_groups", [GROUPS])
@pytest.mark.parametrize("named", ["ng-a10", "a10-pool"])
def test_a_workspace_bound_to_one_node_group_asks_only_that_one(fake, named):
    assert backend_for(fake, node_group=named).accelerators() == [
        Accelerator("a10", 4, "ng-a10", 2)
    ]
    assert [q["node_groups"] for _, _, q, _ in fake.calls("GET", "/shapes")] == ["ng-a10"]


def test_a_workspace_without_node_groups_offers_nothing(fake):
    assert backend_for(fake).accelerators() == []


def test_a_wrong_token_is_refused_without_the_token(fake):
    client = LeptonClient(fake.url, "wrong-token-123", WORKSPACE, timeout_seconds=10.0)
    backend = LeptonBackend(client, LeptonConfig(WORKSPACE, "wrong-token-123", fake.url))
    with pytest.raises(SubmitRejected, match="rejected the token") as refused:
        backend.accelerators()
    assert "wrong-token-123" not in str(refused.value)


@pytest.mark.integration
@pytest.mark.parametrize("node_groups", [GROUPS])
def test_gpu_types_for_an_org_with_lepton_workspaces(app, login, fake):
    s = login()
    good = lepton_workspace(s, fake)
    bad = lepton_workspace(s, fake, token="revoked-token-77")
    login("globex")  # another org's workspaces are not acme's
    with app.app_context():
        answer = accelerators.gpu_types(services(app), "acme")
        again = accelerators.gpu_types(services(app), "acme")
    assert answer == again
    assert answer["gpu_types"] == ["a10", "cpu", "h100-sxm"]
    backends = {b["backend"]: b for b in answer["backends"]}
    assert list(backends) == ["process", f"lepton:{good}", f"lepton:{bad}"]
    assert backends["process"]["accelerators"] == [
        {"name": "cpu", "count": 0, "where": "local", "nodes": 1}
    ]
    assert {"name": "h100-sxm", "count": 8, "where": "ng-h100", "nodes": 4} in backends[
        f"lepton:{good}"
    ]["accelerators"]
    assert "error" not in backends[f"lepton:{good}"]
    assert backends[f"lepton:{bad}"]["accelerators"] == []
    assert "rejected the token" in backends[f"lepton:{bad}"]["error"]
    assert "revoked-token-77" not in str(answer) and TOKEN not in str(answer)
    # asked once for both calls (the double records only requests it let in)
    assert len(fake.calls("GET", "/dedicated-node-groups")) == 1
