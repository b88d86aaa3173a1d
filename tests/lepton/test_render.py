"""The Lepton job body, pinned by golden files, and the job ids derived for runs.

Regenerate the golden files after an intended change with
``JY_UPDATE_GOLDEN=1 pytest tests/lepton/test_render.py``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from jobyard.backends.base import Handle, RunSpec
from jobyard.backends.errors import SubmitRejected
from jobyard.backends.lepton.config import GATEWAY, LeptonConfig
from jobyard.backends.lepton.render import lepton_job_id, render_job_body, resource_shape

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "lepton"
JOB = "6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60"
CONFIG = LeptonConfig(
    workspace_id="ws1",
    token="secret-token",
    api_url="http://lepton.invalid/api/v2/workspaces/ws1",
    mounts=({"path": "/jobyard", "mount_path": "/jobyard", "from": "node-nfs:shared"},),
)


def _spec(**changes: object) -> RunSpec:
    base: dict[str, object] = dict(
        job_id=JOB,
        run=1,
        action="train",
        command=["python", "-m", "jobyard.workloads.classifier"],
        specs={"train": {"num_epochs": 2, "num_gpus": 1}},
        timeout_seconds=3600,
    )
    base.update(changes)
    return RunSpec(**base)  # type: ignore[arg-type]


CASES: dict[str, RunSpec] = {
    "train.json": _spec(),
    "train_gpus_node_group.json": _spec(
        run=3,
        options={
            "backend_type": "lepton",
            "num_gpus": 2,
            "gpu_type": "a100",
            "platform_id": "ng-prod",
        },
    ),
    "evaluate_parent_env.json": _spec(
        action="evaluate",
        specs={"evaluate": {"batch_size": 64}},
        env={"PYTHONPATH": "/srv/jobyard", "JOBYARD_SECRET": "never", "JY_RUN": "stale"},
        parent=Handle("lepton", "jy-parent-r1", {"results_dir": "/jobyard/parent/results"}),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_body_matches_golden_file(name):
    body = render_job_body(CASES[name], CONFIG)
    text = json.dumps(body, indent=2, sort_keys=True) + "\n"
    path = GOLDEN / name
    if os.environ.get("JY_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_body_carries_the_contract_and_never_a_secret():
    body = render_job_body(CASES["evaluate_parent_env.json"], CONFIG)
    env = {e["name"]: e["value"] for e in body["spec"]["envs"]}
    assert env["JY_RUN"] == "1" and "JOBYARD_SECRET" not in env
    assert json.loads(env["JY_SPECS_JSON"]) == {"evaluate": {"batch_size": 64}}
    assert env["JY_RESULTS_DIR"] == f"/jobyard/{JOB}/results"
    assert env["JY_STATUS_FILE"] == f"/jobyard/{JOB}/run-1/status.jsonl"
    assert env["JY_PARENT_RESULTS_DIR"] == "/jobyard/parent/results"
    assert "secret-token" not in json.dumps(body)
    assert body["spec"]["container"]["command"][:4] == [
        "python",
        "-m",
        "jobyard.backends.lepton.entrypoint",
        "--",
    ]


@pytest.mark.parametrize(
    ("job_id", "run"),
    [(JOB, 1), (JOB, 12345), ("UPPER_case.id", 2), ("7" * 200, 1), ("---", 1), ("", 1)],
)
def test_job_ids_are_valid_lepton_ids(job_id, run):
    name = lepton_job_id(job_id, run)
    assert re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]", name) and len(name) <= 36, name
    assert "--" not in name
    assert lepton_job_id(job_id, run) == name  # deterministic: a retried submit finds it


def test_ids_that_share_the_cut_prefix_or_differ_in_case_do_not_collide():
    long_a, long_b = "a" * 40 + "x", "a" * 40 + "y"
    ids = {lepton_job_id(j, r) for j in (JOB, long_a, long_b, "Job-1", "job-1") for r in (1, 2)}
    assert len(ids) == 10


@pytest.mark.parametrize(
    ("options", "shape"),
    [
        ({}, "cpu.small"),
        ({"num_gpus": 0, "gpu_type": "a100"}, "cpu.small"),
        ({"num_gpus": 1, "gpu_type": "H100-SXM"}, "gpu.h100-sxm"),
        ({"num_gpus": 8, "gpu_type": "h100-sxm"}, "gpu.8xh100-sxm"),
        ({"gpu_type": "a100"}, "gpu.a100"),  # num_gpus from the train spec
    ],
)
def test_resource_shape_from_backend_details(options, shape):
    assert resource_shape(_spec(options=options)) == shape


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"num_gpus": 2}, "needs backend_details.gpu_type"),
        ({"num_gpus": 1, "gpu_type": "a100; rm"}, "not a Lepton GPU name"),
    ],
)
def test_impossible_shapes_are_refused_with_a_reason(options, words):
    with pytest.raises(SubmitRejected, match=re.escape(words)):
        render_job_body(_spec(options=options), CONFIG)


def test_workspace_details_default_to_the_real_gateway_and_hide_the_token():
    config = LeptonConfig.from_workspace(
        {
            "lepton_workspace_id": "ws9",
            "lepton_auth_token": "tok-abc",
            "storage_backend": {"storage_type": "aws"},
        }
    )
    assert config.api_url == GATEWAY.format(workspace="ws9")
    assert "tok-abc" not in repr(config)
    with pytest.raises(SubmitRejected, match="no lepton_auth_token"):
        LeptonConfig.from_workspace({"lepton_workspace_id": "ws9"})
