"""The batch/v1 Job for one run, as a pure function of the run spec and the config.

Choices a reader of the manifest should know about:

- ``backoffLimit: 0`` and ``restartPolicy: Never``: jobyard decides about retries (a resume
  is a new run), so Kubernetes must never start a second pod for the same run.
- ``podFailurePolicy`` fails the Job on exit code 75 (``EXIT_PAUSED``) with a condition
  whose message carries the exit code. A graceful pause deletes the pod, and a deleted
  pod's status vanishes with it; the Job's condition outlives it and still tells "paused"
  from "failed". With a pod failure policy, Kubernetes also waits for the deleted pod to
  terminate before it counts it (``podReplacementPolicy: Failed``), so the checkpoint is
  written before the Job ends.
- Specs, status file and results live on one results volume that the worker mounts too
  (a ReadWriteMany claim, or a hostPath on one node): the worker writes ``specs.json``
  before creating the Job and reads ``status.jsonl`` at byte offsets, exactly as the
  process backend does, and a status file survives the pod, unlike its log.
- The pod gets no service account token: the workload never talks to the API server.
- A model server (an inference microservice's run, the ``serve`` action) is an apps/v1
  Deployment of one replica and a ClusterIP Service in front of it, both named after the
  run: Kubernetes keeps the pod running, and jobyard replaces the run (its own restart
  count) when the container has exited once.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

from jobyard.backends import contract
from jobyard.backends.base import EXIT_PAUSED, RunSpec
from jobyard.backends.errors import SubmitRejected
from jobyard.backends.kubernetes.config import KubeConfig
from jobyard.backends.process import layout

CONTAINER = "main"
PYTHON = "python"  # the image's interpreter, for the catalog's {python}
VOLUME = "results"
MANAGED_BY = "app.kubernetes.io/managed-by"
INSTANCE = "app.kubernetes.io/instance"
JOB_ID = "jobyard.io/job-id"
RUN = "jobyard.io/run"
RUN_NAME = "jobyard.io/run-name"
ORG = "jobyard.io/org"

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE_BAD = re.compile(r"[^A-Za-z0-9_.-]")


def selector(config: KubeConfig) -> str:
    """The label selector that finds every Job and Pod of this deployment, and no other."""
    return f"{MANAGED_BY}=jobyard,{INSTANCE}={config.instance}"


def run_selector(config: KubeConfig, run_name: str) -> str:
    """The selector of one run's Job and Pods (the run name is its ``RUN_NAME`` label)."""
    return f"{selector(config)},{RUN_NAME}={run_name}"


def label_value(value: str) -> str:
    """``value`` made into a valid label value (at most 63 characters of ``[A-Za-z0-9_.-]``,
    alphanumeric at both ends); the exact value is kept in an annotation."""
    cleaned = _LABEL_VALUE_BAD.sub("-", value)[:63]
    return cleaned.strip("-_.")


def pod_job_dir(config: KubeConfig, job_id: str) -> str:
    return posixpath.join(config.results_mount, layout.check_job_id(job_id))


def pod_results_dir(config: KubeConfig, job_id: str) -> str:
    return posixpath.join(pod_job_dir(config, job_id), contract.RESULTS_DIR)


def pod_run_dir(config: KubeConfig, job_id: str, run: int) -> str:
    return posixpath.join(pod_job_dir(config, job_id), f"run-{run}")


def num_gpus(spec: RunSpec) -> int:
    """GPUs to request: ``backend_details.num_gpus``, else ``resources``; none by default.

    The spec's own ``train.num_gpus`` is not used: the reference workload records it but
    runs on CPU, and a GPU request it cannot use would keep it off CPU-only clusters.
    """
    raw = spec.options.get("num_gpus", spec.resources.get("num_gpus", 0))
    try:
        count = int(raw or 0)
    except (TypeError, ValueError):
        raise SubmitRejected(f"run {spec.name}: num_gpus must be a number, got {raw!r}") from None
    if count < 0:
        raise SubmitRejected(f"run {spec.name}: num_gpus must not be negative, got {count}")
    return count


def pod_paths(spec: RunSpec, config: KubeConfig) -> contract.RunPaths:
    """The contract's paths as the pod sees them; a parent's results are on the same
    volume, under its job id."""
    parent = None
    if spec.parent is not None:
        parent_job = spec.parent.data.get("job_id")
        if not parent_job:
            raise SubmitRejected(f"run {spec.name}: parent {spec.parent.name} has no job id")
        parent = pod_results_dir(config, str(parent_job))
    return contract.run_paths(
        pod_results_dir(config, spec.job_id),
        pod_run_dir(config, spec.job_id, spec.run),
        parent,
        spec.spec_format,
    )


def workload_env(spec: RunSpec, config: KubeConfig) -> list[dict[str, str]]:
    """The contract (``backends.contract``) as the pod sees it."""
    # unbuffered: the log is read while the run goes on
    env = contract.environment(spec, pod_paths(spec, config), extra={"PYTHONUNBUFFERED": "1"})
    return [{"name": k, "value": v} for k, v in env.items()]


def labels(spec: RunSpec, config: KubeConfig) -> dict[str, str]:
    found = {
        MANAGED_BY: "jobyard",
        INSTANCE: config.instance,
        JOB_ID: label_value(spec.job_id),
        RUN: str(spec.run),
        RUN_NAME: spec.name,
    }
    org = spec.org
    if org:
        found[ORG] = label_value(org)
    return found


def _volume(config: KubeConfig) -> dict[str, Any]:
    if config.results_host_path:
        host_path = {"path": config.results_host_path, "type": "DirectoryOrCreate"}
        return {"name": VOLUME, "hostPath": host_path}
    return {"name": VOLUME, "persistentVolumeClaim": {"claimName": config.results_claim}}


def _container(spec: RunSpec, config: KubeConfig) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": config.image_for(spec.network_arch, spec.image),
        "command": contract.argv(spec, pod_paths(spec, config), PYTHON),
        "workingDir": pod_results_dir(config, spec.job_id),
        "env": workload_env(spec, config),
        "volumeMounts": [{"name": VOLUME, "mountPath": config.results_mount}],
    }
    gpus = num_gpus(spec)
    if gpus:
        container["resources"] = {"limits": {config.gpu_resource: str(gpus)}}
    return container


def _pod_spec(spec: RunSpec, config: KubeConfig) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": config.grace_seconds,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "containers": [_container(spec, config)],
        "volumes": [_volume(config)],
    }
    if config.service_account:
        pod["serviceAccountName"] = config.service_account
    if config.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": name} for name in config.image_pull_secrets]
    if config.node_selector:
        pod["nodeSelector"] = dict(config.node_selector)
    if config.tolerations:
        pod["tolerations"] = [dict(t) for t in config.tolerations]
    return pod


def _check_name(spec: RunSpec) -> None:
    if len(spec.name) > 63 or not _DNS_LABEL.fullmatch(spec.name):
        raise SubmitRejected(
            f"run name {spec.name!r} is not a valid Kubernetes name "
            "(at most 63 characters of a-z, 0-9 and '-')"
        )


def render_server_manifests(
    spec: RunSpec, config: KubeConfig, port: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Deployment and the Service of a model server run, both named ``spec.name``."""
    _check_name(spec)
    found = labels(spec, config)
    annotations = {JOB_ID: spec.job_id}
    chosen = {INSTANCE: config.instance, RUN_NAME: spec.name}
    pod = _pod_spec(spec, config)
    pod["restartPolicy"] = "Always"  # the only policy a Deployment allows
    pod["containers"][0]["ports"] = [{"name": "http", "containerPort": port}]
    metadata = {"name": spec.name, "labels": found, "annotations": annotations}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(chosen)},
            "template": {
                "metadata": {"labels": dict(found), "annotations": dict(annotations)},
                "spec": pod,
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {**metadata, "labels": dict(found), "annotations": dict(annotations)},
        "spec": {
            "type": "ClusterIP",
            "selector": dict(chosen),
            "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }
    return deployment, service


def render_job_manifest(spec: RunSpec, config: KubeConfig) -> dict[str, Any]:
    """The Job that runs ``spec``, named ``spec.name`` so a retried submit finds it."""
    _check_name(spec)
    found = labels(spec, config)
    annotations = {JOB_ID: spec.job_id}
    metadata: Mapping[str, Any] = {"name": spec.name, "labels": found, "annotations": annotations}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": dict(metadata),
        "spec": {
            "backoffLimit": 0,
            "completions": 1,
            "parallelism": 1,
            "activeDeadlineSeconds": max(1, int(spec.timeout_seconds)),
            "ttlSecondsAfterFinished": config.ttl_seconds,
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": CONTAINER,
                            "operator": "In",
                            "values": [EXIT_PAUSED],
                        },
                    }
                ]
            },
            "template": {
                "metadata": {"labels": dict(found), "annotations": dict(annotations)},
                "spec": _pod_spec(spec, config),
            },
        },
    }
