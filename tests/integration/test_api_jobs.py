"""The jobs API without a worker: validation, listing, schema, cancel before
dispatch, and the error shape. The engine tests run jobs end to end."""

from __future__ import annotations

import json

import pytest

from jobyard.schemas.job import JobState
from jobyard.store.catalog import REFERENCE
from tests.helpers import assert_error

pytestmark = pytest.mark.integration


def train_body(**overrides):
    specs = REFERENCE.default_spec("train")
    specs["train"]["num_epochs"] = 3
    body = {
        "kind": "experiment",
        "name": "t",
        "network_arch": "classification_pyt",
        "action": "train",
        "specs": specs,
        "encryption_key": "tlt_encode",
    }
    body.update(overrides)
    return body


def test_create_returns_a_pending_job_with_an_id(login):
    s = login()
    response = s.call("POST", "jobs", json=train_body())
    assert response.status_code == 201, response.json
    job = response.json
    assert job["status"] == "Pending" and len(job["id"]) == 36
    assert job["timeout_minutes"] == 60 and job["run"] == 1
    assert job["base_experiment_ids"] == [REFERENCE.id]
    assert "encryption_key" not in job and "handle" not in job
    assert s.call("GET", f"jobs/{job['id']}").json["status"] == "Pending"


def test_schema_default_edited_with_seed_jq_is_accepted(login):
    s = login()
    base = s.call("GET", "jobs:list_base_experiments").json["base_experiments"]
    base_id = [b for b in base if b["network_arch"] == "classification_pyt"][0]["id"]
    schema = s.call("GET", f"jobs:schema?action=train&base_experiment_id={base_id}").json
    assert schema["schema"]["type"] == "object"
    specs = schema["default"]
    specs["train"]["num_epochs"] = 10
    specs["train"]["num_gpus"] = 2
    body = train_body(specs=specs, base_experiment_ids=[base_id])
    assert s.call("POST", "jobs", json=body).status_code == 201


def test_specs_are_checked_against_the_actions_schema(login):
    s = login()
    specs = REFERENCE.default_spec("train")
    specs["train"]["num_epochs"] = "ten"
    specs["train"]["colour"] = 1
    body = assert_error(s.call("POST", "jobs", json=train_body(specs=specs)), 400)
    joined = json.dumps(body["errors"]["specs"])
    assert "train.num_epochs" in joined and "train.colour" in joined


BAD = {
    "unknown-field": {"gpu": 1},
    "unknown-kind": {"kind": "pipeline"},
    "dataset-kind": {"kind": "dataset"},
    "unknown-action": {"action": "dance"},
    "unsupported-action": {"action": "prune"},
    "unknown-arch": {"network_arch": "resnet9000"},
    "arch-without-workload": {"network_arch": "rtdetr"},
    "timeout-zero": {"timeout_minutes": 0},
    "timeout-over-max": {"timeout_minutes": 10**6},
    "timeout-not-int": {"timeout_minutes": "soon"},
    "automl": {"automl_settings": {"automl_enabled": True}},
    "bad-uri": {"train_dataset_uris": ["ftp://x/y"]},
    "backend-unknown": {"backend_details": {"backend_type": "mainframe"}},
    "lepton-without-workspace": {"backend_details": {"backend_type": "lepton"}},
    "slurm-without-workspace": {"backend_details": {"backend_type": "slurm"}},
    "missing-workspace": {"workspace": "no-such-workspace"},
    "early-stop-zero": {"early_stop_epoch": 0},
    "name-too-long": {"name": "x" * 501},
    "azure-uri": {"train_dataset_uris": ["azure://container/data"]},
    "hf-uri": {"eval_dataset_uri": "hf://datasets/mnist"},
    "empty-uri": {"eval_dataset_uri": "aws://"},
}


@pytest.mark.parametrize(
    ("uri", "named"),
    [
        ("azure://container/train", "azure:// cannot be read: Azure Blob storage"),
        ("hf://datasets/mnist", "hf:// cannot be read: Hugging Face"),
        ("gopher://x/y", "unknown scheme gopher://"),
    ],
)
def test_a_dataset_uri_jobyard_cannot_read_is_refused_naming_its_scheme(login, uri, named):
    s = login()
    body = assert_error(s.call("POST", "jobs", json=train_body(train_dataset_uris=[uri])), 400)
    assert named in body["error_desc"]
    assert (
        "readable: file://, lustre://, aws://, seaweedfs://, https://, http://"
        in (body["error_desc"])
    )


@pytest.mark.parametrize("overrides", BAD.values(), ids=BAD.keys())
def test_bad_job_bodies_get_400_and_store_nothing(login, overrides):
    s = login()
    body = assert_error(s.call("POST", "jobs", json=train_body(**overrides)), 400)
    assert body["errors"]
    assert s.call("GET", "jobs").json["jobs"] == []


def test_a_remote_backend_needs_a_workspace_of_its_kind(login):
    s = login()
    body = {"name": "w", "cloud_type": "local", "cloud_specific_details": {}}
    local = s.call("POST", "workspaces", json=body).json["id"]
    details = {"backend_type": "slurm", "partition": "debug"}
    error = assert_error(
        s.call("POST", "jobs", json=train_body(workspace=local, backend_details=details)), 400
    )
    assert "needs a slurm workspace" in error["error_desc"]


def test_derived_actions_need_a_finished_train_parent(login):
    s = login()
    evaluate = {"action": "evaluate", "specs": REFERENCE.default_spec("evaluate")}
    assert (
        "parent_job_id"
        in assert_error(s.call("POST", "jobs", json=train_body(**evaluate)), 400)["errors"]
    )
    parent = s.call("POST", "jobs", json=train_body()).json["id"]
    body = assert_error(
        s.call("POST", "jobs", json=train_body(parent_job_id=parent, **evaluate)), 400
    )
    assert "Pending" in body["error_desc"]


def test_list_filters_and_pages(login):
    s = login()
    for name in ("a", "b", "c"):
        s.call("POST", "jobs", json=train_body(name=name))
    listed = s.call("GET", "jobs?sort=name-descending&size=2").json
    assert [j["name"] for j in listed["jobs"]] == ["c", "b"]
    assert listed["pagination_info"]["total_records"] == 3
    assert s.call("GET", "jobs?status=Running").json["jobs"] == []
    assert len(s.call("GET", "jobs?action=train&status=Pending").json["jobs"]) == 3
    assert_error(s.call("GET", "jobs?status=Sleeping"), 400)


def test_cancel_returns_at_once_and_a_final_job_cannot_be_canceled(login, store):
    s = login()
    job_id = s.call("POST", "jobs", json=train_body()).json["id"]
    response = s.call("POST", f"jobs/{job_id}:cancel")
    assert response.status_code == 200 and response.json["status"] == "Canceling"
    store.jobs.transition(job_id, JobState.CANCELED)
    assert_error(s.call("POST", f"jobs/{job_id}:cancel"), 409)


def test_active_job_cannot_be_deleted_finished_one_can(login, store):
    s = login()
    job_id = s.call("POST", "jobs", json=train_body()).json["id"]
    assert_error(s.call("DELETE", f"jobs/{job_id}"), 409)
    s.call("POST", f"jobs/{job_id}:cancel")
    store.jobs.transition(job_id, JobState.CANCELED)
    assert s.call("DELETE", f"jobs/{job_id}").status_code == 200
    assert_error(s.call("GET", f"jobs/{job_id}"), 404)


def test_logs_and_events_of_a_new_job_are_empty(login):
    s = login()
    job_id = s.call("POST", "jobs", json=train_body()).json["id"]
    logs = s.call("GET", f"jobs/{job_id}:logs")
    assert logs.status_code == 200 and logs.mimetype == "text/plain" and logs.data == b""
    assert logs.headers["X-Next-Offset"] == "0"
    assert s.call("GET", f"jobs/{job_id}:events").json == {"events": []}
    assert s.call("GET", f"jobs/{job_id}:events?automl_experiment_number=2").json == {"events": []}


def test_other_orgs_jobs_are_invisible(login):
    alice, mallory = login("acme"), login("globex", user="mallory")
    job_id = alice.call("POST", "jobs", json=train_body()).json["id"]
    for path in (f"jobs/{job_id}", f"jobs/{job_id}:logs", f"jobs/{job_id}:events"):
        assert_error(mallory.call("GET", path), 404)
    assert_error(mallory.call("POST", f"jobs/{job_id}:cancel"), 404)
    assert mallory.call("GET", "jobs").json["jobs"] == []


def test_schema_endpoint_errors(login):
    s = login()
    assert_error(s.call("GET", "jobs:schema"), 400)
    assert_error(s.call("GET", "jobs:schema?action=prune"), 400)
    assert_error(s.call("GET", "jobs:schema?action=train&base_experiment_id=nope"), 404)
    assert s.call("GET", "jobs:gpu_types").json["gpu_types"] == ["cpu"]
