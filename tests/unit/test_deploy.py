"""The Kubernetes manifests in deploy/kubernetes load into the official client's models
(the same deserialisation the client applies to an API server's answers), every worker
pool runs a real ``jobyard worker`` on real queues, every queue a job can wait on in a
cluster has a pool, and each pool's KEDA ScaledObject (checked against the schema kept
beside it) targets that pool on its queue's Redis list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from jobyard.workers.celery_app import CONTROL_QUEUE
from jobyard.workers.turns import broker_lists

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
MODELS = {
    "ConfigMap": "V1ConfigMap",
    "Deployment": "V1Deployment",
    "Service": "V1Service",
    "HorizontalPodAutoscaler": "V2HorizontalPodAutoscaler",
}


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def test_every_object_loads_into_the_kubernetes_clients_models():
    client = pytest.importorskip("kubernetes.client")
    api = client.ApiClient()
    docs = _docs("jobyard.yaml")
    assert {d["kind"] for d in docs} == set(MODELS)
    for doc in docs:
        # as the client reads an API server's JSON answer
        model = api.deserialize(json.dumps(doc), MODELS[doc["kind"]], "application/json")
        assert model.metadata.name == doc["metadata"]["name"]
        if doc["kind"] == "Deployment":
            assert model.spec.template.spec.containers[0].image == "jobyard:latest"
            labels = model.spec.template.metadata.labels
            assert set(model.spec.selector.match_labels.items()) <= set(labels.items())


def _pools() -> dict[str, list[str]]:
    from jobyard.cli import parser

    pools = {}
    for doc in _docs("jobyard.yaml"):
        if doc["kind"] == "Deployment" and "jobyard.dev/pool" in doc["metadata"]["labels"]:
            command = doc["spec"]["template"]["spec"]["containers"][0]["command"]
            args = parser().parse_args(command[1:])  # exits on anything jobyard lacks
            pools[doc["metadata"]["name"]] = args.queues.split(",")
    return pools


def test_every_queue_a_cluster_job_waits_on_has_one_pool():
    from jobyard.workers.celery_app import QUEUES

    pools = _pools()
    consumed = [q for queues in pools.values() for q in queues]
    assert sorted(consumed) == sorted(set(consumed)), "a queue in two pools"
    # the process backend runs nothing in a cluster (local means kubernetes there)
    assert set(consumed) == set(QUEUES) - {"process"}


def test_each_pool_is_scaled_by_keda_on_its_queue():
    schema = json.loads((DEPLOY / "scaledobject.schema.json").read_text())
    pools = _pools()
    scaled = {}
    for doc in _docs("keda.yaml"):
        jsonschema.validate(doc, schema)
        triggers = doc["spec"]["triggers"]
        assert {t["type"] for t in triggers} == {"redis"}
        scaled[doc["spec"]["scaleTargetRef"]["name"]] = [
            t["metadata"]["listName"] for t in triggers
        ]
    assert set(scaled) == set(pools)
    for pool, lists in scaled.items():
        queue = pools[pool][0]
        # a backend pool's turns wait on a list of their own (workers.turns)
        assert lists == ([queue] if queue == CONTROL_QUEUE else list(broker_lists(queue)))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**_docs("keda.yaml")[0], "spec": {"triggers": []}}, schema)
