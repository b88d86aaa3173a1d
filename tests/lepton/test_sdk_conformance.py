"""The double answers the real ``leptonai`` SDK as Lepton does, and jobyard's job body is a
valid ``LeptonJob`` under the SDK's own model.

The SDK pins httpx and pulls in Ray, so it is not in jobyard's environment: this test runs
``sdk_conformance.py`` under an interpreter that has it, either this one or the one named by
``JY_LEPTONAI_PYTHON`` (a separate venv: ``python -m venv V && V/bin/pip install
leptonai==0.47.1``), and is skipped when there is neither.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobyard.backends.base import Accelerator, RunSpec
from jobyard.backends.lepton.backend import LeptonBackend
from jobyard.backends.lepton.client import LeptonClient
from jobyard.backends.lepton.config import LeptonConfig
from jobyard.backends.lepton.render import render_job_body
from jobyard.backends.lepton.stream import exit_code, split_log
from tests.lepton.conftest import TOKEN, WORKSPACE
from tests.lepton.fake_lepton import NodeGroup, Shape

SCRIPT = Path(__file__).with_name("sdk_conformance.py")


def _sdk_python() -> str | None:
    named = os.environ.get("JY_LEPTONAI_PYTHON")
    if named:
        return named if Path(named).is_file() else None
    return sys.executable if importlib.util.find_spec("leptonai") else None


SDK_PYTHON = _sdk_python()
pytestmark = pytest.mark.skipif(
    SDK_PYTHON is None,
    reason="leptonai is not importable here (it stays out of jobyard's venv); install it in "
    "a separate venv and set JY_LEPTONAI_PYTHON to that venv's python",
)


def _body(config, job_id, command, **options):
    spec = RunSpec(
        job_id=job_id,
        run=1,
        action="train",
        command=command,
        specs={"train": {"num_epochs": 1}},
        options=options,
    )
    return render_job_body(spec, config)


GROUPS = [
    NodeGroup(
        "ng-h100",
        "h100-pool",
        gpu_product="NVIDIA-H100-80GB-HBM3",
        ready_nodes=2,
        shapes=(
            Shape("cpu.small", cpu=2),
            Shape("gpu.8xh100-sxm", "NVIDIA-H100-80GB-HBM3", 8, cpu=128),
            Shape("gpu.16xh100-sxm", "NVIDIA-H100-80GB-HBM3", 16, listable_in=("deployment",)),
        ),
    )
]


@pytest.mark.parametrize("node_groups", [GROUPS])
def test_the_sdk_drives_the_double_with_jobyards_bodies(fake):
    mount = {"path": "/", "mount_path": "/jobyard", "from": "node-nfs:fs"}
    config = LeptonConfig(WORKSPACE, TOKEN, fake.url, mounts=(mount,))
    ours = _body(
        config,
        "job-gpu",
        ["python", "-m", "jobyard.workloads.classifier"],
        num_gpus=2,
        gpu_type="a100",
        platform_id="ng-1",
    )
    run = _body(config, "job-run", ["sh", "-c", "echo hello from lepton"])
    long = _body(config, "job-long", ["sleep", "30"])
    result = subprocess.run(
        [str(SDK_PYTHON), str(SCRIPT), fake.url, TOKEN, WORKSPACE],
        input=json.dumps({"ours": ours, "run": run, "long": long}),
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])

    parsed = seen["parsed"]  # nothing of ours was dropped or renamed by the SDK's model
    assert parsed["metadata"]["id"] == ours["metadata"]["id"]
    assert parsed["metadata"]["labels"] == ours["metadata"]["labels"]
    for key, value in ours["spec"].items():
        assert parsed["spec"][key] == value, key

    sent = fake.calls("POST", "/jobs")[0][3]  # what the SDK put on the wire for our body
    for key in ("resource_shape", "container", "envs", "completions", "max_failure_retry"):
        assert sent["spec"][key] == run["spec"][key], key
    assert seen["created_state"] == "Starting" and seen["final_state"] == "Completed"
    assert seen["replicas"] == [f"{run['metadata']['id']}-0-abcde"]
    raw = seen["log"].encode()
    assert split_log(raw, complete=True)[1] == b"hello from lepton\n" and exit_code(raw) == 0
    assert seen["events"] == ["Created"]
    assert seen["listed"] == sorted([run["metadata"]["id"], long["metadata"]["id"]])
    assert seen["stopped_state"] == "Stopped"
    assert seen["get_deleted"] != "found"
    assert seen["wrong_token"] != "accepted" and "401" in seen["wrong_token"]
    assert "Skipped" not in result.stderr  # the SDK drops list items its models refuse

    # node groups and their job shapes, as the SDK reads them and as jobyard asks for them
    (group,) = seen["node_groups"]
    assert group["metadata"] == {"id": "ng-h100", "name": "h100-pool", "created_at": 1700000000000}
    assert group["status"]["ready_nodes"] == 2
    assert group["spec"]["gpu_product"] == "NVIDIA-H100-80GB-HBM3"
    shapes = seen["shapes"]["ng-h100"]
    assert [s["spec"]["name"] for s in shapes] == ["cpu.small", "gpu.8xh100-sxm"]
    assert shapes[1]["spec"]["accelerator_num"] == 8
    assert shapes[1]["spec"]["listable_in"] == ["pod", "deployment", "job"]
    sdk_shape_calls = [q for _, _, q, _ in fake.calls("GET", "/shapes")]
    assert sdk_shape_calls == [{"node_groups": "ng-h100", "purpose": "job"}]
    config = LeptonConfig(WORKSPACE, TOKEN, fake.url)
    client = LeptonClient(fake.url, TOKEN, WORKSPACE, timeout_seconds=10.0)
    assert LeptonBackend(client, config).accelerators() == [
        Accelerator("cpu", 0, "ng-h100", 2),
        Accelerator("h100-sxm", 8, "ng-h100", 2),
    ]
    assert [q for _, _, q, _ in fake.calls("GET", "/shapes")] == sdk_shape_calls * 2
