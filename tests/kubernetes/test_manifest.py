"""The Job manifest, pinned by golden files (``UPDATE_GOLDEN=1`` rewrites them)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from jobyard.backends.base import Handle, RunSpec
from jobyard.backends.errors import SubmitRejected
from jobyard.backends.kubernetes import config, manifest
from jobyard.backends.kubernetes.config import KubeConfig
from jobyard.schemas.settings import Settings
from jobyard.workloads import specs as reference_specs

GOLDEN = Path(__file__).parent.parent / "data" / "kubernetes"
JOB_ID = "0b6c1d52-3c0e-4bb6-8d3a-2f1c5e6a7b80"
PARENT_ID = "5d7f7b9e-1f55-4a8e-9e0f-59b1f0a2c3d4"


def check_golden(name: str, rendered: dict) -> None:
    path = GOLDEN / name
    text = json.dumps(rendered, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; rerun with UPDATE_GOLDEN=1 if meant"


def train_spec(**changes) -> RunSpec:
    fields = dict(
        job_id=JOB_ID,
        run=1,
        action="train",
        command=("python", "-m", "jobyard.workloads.classifier"),
        specs=reference_specs.default_spec("train"),
        timeout_seconds=3600,
    )
    fields.update(changes)
    return RunSpec(**fields)


def test_train_job_on_a_default_deployment():
    kube = config.from_settings(Settings(), "jobyard")
    check_golden("job_train_default.json", manifest.render_job_manifest(train_spec(), kube))


def test_evaluate_job_with_gpus_and_every_scheduling_setting():
    settings = Settings(
        kubernetes_images="classification_pyt=nvcr.io/nvidia/tao/tao-toolkit:5.5.0-pyt",
        kubernetes_default_image="registry.example.com/jobyard:1.0",
        kubernetes_service_account="jobyard-runner",
        kubernetes_image_pull_secrets="ngc-pull, private-registry",
        kubernetes_node_selector="nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB,pool=train",
        kubernetes_tolerations='[{"key": "nvidia.com/gpu", "operator": "Exists", '
        '"effect": "NoSchedule"}]',
        kubernetes_results_host_path=Path("/srv/jobyard"),
        kubernetes_results_mount="/results",
        kubernetes_instance="prod",
        grace_period_seconds=12.5,
    )
    parent = Handle("kubernetes", f"jy-{PARENT_ID}-r2", {"job_id": PARENT_ID})
    spec = train_spec(
        action="evaluate",
        run=3,
        specs=reference_specs.default_spec("evaluate"),
        parent=parent,
        timeout_seconds=600,
        options={"num_gpus": 2},
        env={"NCCL_DEBUG": "INFO", "JOBYARD_ENCRYPTION_KEY": "never"},
    )
    rendered = manifest.render_job_manifest(spec, config.from_settings(settings, "ml"))
    check_golden("job_evaluate_gpus.json", rendered)


def test_contract_paths_live_on_the_results_volume():
    kube = KubeConfig(results_mount="/jobyard")
    env = {e["name"]: e["value"] for e in manifest.workload_env(train_spec(run=2), kube)}
    assert env["JY_RESULTS_DIR"] == f"/jobyard/{JOB_ID}/results"
    assert env["JY_STATUS_FILE"] == f"/jobyard/{JOB_ID}/run-2/status.jsonl"
    assert env["JY_SPECS_FILE"] == f"/jobyard/{JOB_ID}/run-2/specs.json"
    assert "JY_PARENT_RESULTS_DIR" not in env


def test_the_job_and_its_pods_carry_the_selector_labels():
    kube = KubeConfig(instance="blue")
    rendered = manifest.render_job_manifest(train_spec(), kube)
    for labels in (
        rendered["metadata"]["labels"],
        rendered["spec"]["template"]["metadata"]["labels"],
    ):
        assert (
            manifest.selector(kube) == "app.kubernetes.io/managed-by=jobyard,"
            "app.kubernetes.io/instance=blue"
        )
        assert labels["app.kubernetes.io/instance"] == "blue"
        assert labels["jobyard.io/run-name"] == f"jy-{JOB_ID}-r1"


@pytest.mark.parametrize("job_id", ["UPPER-case", "x" * 60, "under_score"])
def test_a_run_name_kubernetes_cannot_take_is_refused(job_id):
    with pytest.raises(SubmitRejected, match="not a valid Kubernetes name"):
        manifest.render_job_manifest(train_spec(job_id=job_id), KubeConfig())


@pytest.mark.parametrize("gpus", [-1, "many"])
def test_a_bad_gpu_count_is_refused(gpus):
    with pytest.raises(SubmitRejected, match="num_gpus"):
        manifest.render_job_manifest(train_spec(options={"num_gpus": gpus}), KubeConfig())


@pytest.mark.parametrize(
    ("field", "value", "variable"),
    [
        ("kubernetes_node_selector", "pool", "JOBYARD_KUBERNETES_NODE_SELECTOR"),
        ("kubernetes_images", "a=b,=c", "JOBYARD_KUBERNETES_IMAGES"),
        ("kubernetes_tolerations", "{not json", "JOBYARD_KUBERNETES_TOLERATIONS"),
        ("kubernetes_tolerations", '{"key": "a"}', "JOBYARD_KUBERNETES_TOLERATIONS"),
        ("kubernetes_results_mount", "relative/path", "JOBYARD_KUBERNETES_RESULTS_MOUNT"),
    ],
)
def test_malformed_settings_name_the_variable(field, value, variable):
    with pytest.raises(SubmitRejected, match=variable):
        config.from_settings(Settings(**{field: value}), "default")


def test_label_values_are_made_valid():
    assert manifest.label_value("Acme Corp/EU") == "Acme-Corp-EU"
    assert manifest.label_value("-" + "a" * 70) == "a" * 62


@pytest.mark.parametrize("name", ["job_train_default.json", "job_evaluate_gpus.json"])
def test_golden_manifests_survive_the_official_clients_model(name):
    """Every field is one the client's V1Job knows: a misspelt one would be dropped here
    (and by the API server)."""
    from kubernetes import client

    doc = json.loads((GOLDEN / name).read_text())
    model = client.V1Job.from_dict(doc)
    assert client.ApiClient().sanitize_for_serialization(model) == doc


def test_image_per_network_falls_back_to_the_default():
    kube = KubeConfig(images={"classification_pyt": "tao:pyt"}, default_image="jobyard:1")
    assert kube.image_for("classification_pyt") == "tao:pyt"
    assert kube.image_for("dino") == "jobyard:1"
