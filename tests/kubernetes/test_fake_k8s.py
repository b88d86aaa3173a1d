"""The double answers as a real API server does, checked through the official client's
typed calls (which validate every response into its models): the backend's own tests read
raw JSON, so this is what keeps the double's objects complete."""

from __future__ import annotations

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.helpers import wait_for
from tests.kubernetes.fake_k8s import UNPULLABLE_PREFIX, FakeKubernetes, Node

pytestmark = pytest.mark.integration


@pytest.fixture
def apis(fake: FakeKubernetes, tmp_path):
    configuration = client.Configuration()
    config.load_kube_config(
        str(fake.write_kubeconfig(tmp_path)), client_configuration=configuration
    )
    api_client = client.ApiClient(configuration)
    yield client.BatchV1Api(api_client), client.CoreV1Api(api_client)
    api_client.close()


def job(name, command, image="busybox:1.36", grace=5):
    container = {"name": "main", "image": image, "command": command}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app": "t"}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app": "t"}},
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": grace,
                    "containers": [container],
                },
            },
        },
    }


def finished(batch, name):
    status = batch.read_namespaced_job_status(name, "default").status
    return next(
        (
            c
            for c in status.conditions or []
            if c.status == "True" and c.type in ("Complete", "Failed")
        ),
        None,
    )


def test_a_job_runs_and_every_object_validates_in_the_clients_models(apis):
    batch, core = apis
    created = batch.create_namespaced_job("default", job("ok", ["sh", "-c", "echo one; echo two"]))
    assert created.metadata.uid and created.spec.backoff_limit == 0
    assert wait_for(lambda: finished(batch, "ok"), 10, "done").type == "Complete"
    pods = core.list_namespaced_pod("default", label_selector="job-name=ok").items
    assert pods[0].status.container_statuses[0].state.terminated.exit_code == 0
    name = pods[0].metadata.name
    assert core.read_namespaced_pod_log(name, "default") == "one\ntwo\n"
    assert core.read_namespaced_pod_log(name, "default", limit_bytes=5) == "one\nt"
    assert core.read_namespaced_pod_log(name, "default", tail_lines=1) == "two\n"
    jobs = batch.list_namespaced_job("default", label_selector="app=t").items
    assert [j.metadata.name for j in jobs] == ["ok"]
    assert batch.list_namespaced_job("default", label_selector="app=other").items == []
    with pytest.raises(ApiException) as conflict:
        batch.create_namespaced_job("default", job("ok", ["true"]))
    assert conflict.value.status == 409
    batch.delete_namespaced_job("ok", "default", propagation_policy="Background")
    with pytest.raises(ApiException) as gone:
        batch.read_namespaced_job("ok", "default")
    assert gone.value.status == 404


def test_a_deleted_pod_gets_sigterm_and_its_exit_code_counts(apis):
    batch, core = apis
    script = "trap 'echo bye; exit 75' TERM; echo up; while true; do sleep 0.05; done"
    body = job("trap", ["sh", "-c", script])
    body["spec"]["podFailurePolicy"] = {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": "main", "operator": "In", "values": [75]},
            }
        ]
    }
    batch.create_namespaced_job("default", body)
    selector = "job-name=trap"

    def trap_set() -> bool:
        """Running is not enough: SIGTERM before the shell ran ``trap`` kills it with 143
        (a CI run saw that, as BackoffLimitExceeded). "up" is printed after the trap."""
        pods = core.list_namespaced_pod("default", label_selector=selector).items
        if not pods or pods[0].status.phase != "Running":
            return False
        return "up" in core.read_namespaced_pod_log(pods[0].metadata.name, "default")

    wait_for(trap_set, 10, "running with its trap set")
    core.delete_collection_namespaced_pod(
        "default", label_selector=selector, grace_period_seconds=5
    )
    condition = wait_for(lambda: finished(batch, "trap"), 10, "failed")
    assert (condition.type, condition.reason) == ("Failed", "PodFailurePolicy")
    assert "failed with exit code 75 matching FailJob rule at index 0" in condition.message
    assert core.list_namespaced_pod("default", label_selector=selector).items == []


def test_a_pod_waiting_for_its_image_has_no_log_yet(apis):
    batch, core = apis
    batch.create_namespaced_job("default", job("nopull", ["true"], image=UNPULLABLE_PREFIX + "x"))

    def waiting():
        pods = core.list_namespaced_pod("default", label_selector="job-name=nopull").items
        statuses = pods[0].status.container_statuses if pods else None
        return statuses and statuses[0].state.waiting.reason == "ImagePullBackOff" and pods[0]

    pod = wait_for(waiting, 10, "ImagePullBackOff")
    with pytest.raises(ApiException) as refused:
        core.read_namespaced_pod_log(pod.metadata.name, "default")
    assert refused.value.status == 400 and "waiting to start" in refused.value.body


GPU_NODES = [
    Node("gpu-0", labels={"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}, gpus=8),
    Node("cordoned-0", gpus=4, unschedulable=True),
]


@pytest.mark.parametrize("nodes", [GPU_NODES])
def test_nodes_validate_in_the_clients_models_and_take_a_label_selector(apis):
    _, core = apis
    listed = core.list_node().items
    assert [n.metadata.name for n in listed] == ["gpu-0", "cordoned-0"]
    gpu = listed[0]
    assert gpu.metadata.labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"
    assert gpu.metadata.labels["kubernetes.io/hostname"] == "gpu-0"
    assert gpu.status.allocatable["nvidia.com/gpu"] == "8"
    assert gpu.status.node_info.kubelet_version.startswith("v1.")
    assert [c.type for c in gpu.status.conditions if c.status == "True"] == ["Ready"]
    assert listed[1].spec.unschedulable and listed[1].spec.taints[0].effect == "NoSchedule"
    selector = "nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB"
    assert [n.metadata.name for n in core.list_node(label_selector=selector).items] == ["gpu-0"]
    assert core.read_node("cordoned-0").status.allocatable["nvidia.com/gpu"] == "4"
    with pytest.raises(ApiException) as missing:
        core.read_node("nope")
    assert missing.value.status == 404


@pytest.mark.parametrize("nodes", [[Node("cordoned-0", unschedulable=True)]])
def test_a_cordoned_node_takes_no_pods(apis):
    batch, core = apis
    batch.create_namespaced_job("default", job("wait", ["true"]))

    def unschedulable():
        pods = core.list_namespaced_pod("default", label_selector="job-name=wait").items
        conditions = (pods[0].status.conditions or []) if pods else []
        return next((c for c in conditions if c.type == "PodScheduled"), None)

    condition = wait_for(unschedulable, 10, "PodScheduled condition")
    assert condition.status == "False"
    assert "1 node(s) were unschedulable" in condition.message
