"""Workspaces over HTTP: CRUD, listing, masking, and bad input."""

from __future__ import annotations

import json

import pytest

from jobyard.schemas.cloud import MASK
from tests.helpers import assert_error

pytestmark = pytest.mark.integration

AWS = {
    "name": "my_workspace",
    "cloud_type": "aws",
    "cloud_specific_details": {
        "access_key": "AKIAIOSFODNN7EXAMPLE",
        "secret_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "region": "us-west-2",
        "bucket_name": "my-tao-bucket",
    },
    "shared": False,
}
SLURM = {
    "name": "cluster",
    "cloud_type": "slurm",
    "cloud_specific_details": {
        "slurm_user": "svc",
        "slurm_hostname": ["login1", "login2"],
        "base_results_dir": "/lustre/results",
        "ssh_private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n",
    },
}
LEPTON = {
    "name": "lepton",
    "cloud_type": "lepton",
    "cloud_specific_details": {
        "lepton_workspace_id": "ws1",
        "lepton_auth_token": "lepton-token-123",
        "storage_backend": {
            "storage_type": "seaweedfs",
            "access_key": "ak",
            "secret_key": "sk-seaweed",
            "endpoint_url": "http://s3:8333",
            "cloud_bucket_name": "b",
        },
    },
}


def test_create_get_list_delete_roundtrip(login):
    s = login()
    created = s.call("POST", "workspaces", json=AWS)
    assert created.status_code == 201
    ws = created.json
    assert set(ws) >= {
        "id",
        "user_id",
        "created_on",
        "last_modified",
        "name",
        "shared",
        "cloud_type",
    }
    assert ws["cloud_specific_details"]["region"] == "us-west-2"
    assert s.call("GET", f"workspaces/{ws['id']}").json == ws
    listed = s.call("GET", "workspaces").json
    assert [w["id"] for w in listed["workspaces"]] == [ws["id"]]
    assert listed["pagination_info"]["total_records"] == 1
    deleted = s.call("DELETE", f"workspaces/{ws['id']}")
    assert deleted.status_code == 200 and deleted.json["id"] == ws["id"]
    assert_error(s.call("GET", f"workspaces/{ws['id']}"), 404)


@pytest.mark.parametrize("body", [AWS, SLURM, LEPTON], ids=["aws", "slurm", "lepton"])
def test_credentials_are_masked_in_responses_and_encrypted_at_rest(login, store, body):
    s = login()
    response = s.call("POST", "workspaces", json=body)
    assert response.status_code == 201, response.json
    text = response.get_data(as_text=True)
    secrets = ["wJalrXUtnFEMI", "AKIAIOSFODNN7", "BEGIN OPENSSH", "lepton-token-123", "sk-seaweed"]
    for secret in secrets:
        assert secret not in text
        assert secret not in json.dumps(list(store.db["workspaces"].find()), default=str)
    assert MASK in text
    ws_id = response.json["id"]
    creds = store.workspaces.credentials(s.org, ws_id)
    assert creds == {**body["cloud_specific_details"], **creds}  # decrypts to what was sent
    if body is SLURM:
        assert response.json["cloud_specific_details"]["slurm_hostname"] == ["login1", "login2"]


def test_patch_keeps_secrets_sent_back_masked_and_merges_details(login, store):
    s = login()
    ws = s.call("POST", "workspaces", json=AWS).json
    details = dict(ws["cloud_specific_details"], region="eu-west-1")
    patched = s.call("PATCH", f"workspaces/{ws['id']}", json={"cloud_specific_details": details})
    assert patched.status_code == 200, patched.json
    assert patched.json["cloud_specific_details"]["region"] == "eu-west-1"
    creds = store.workspaces.credentials(s.org, ws["id"])
    assert creds["secret_key"] == AWS["cloud_specific_details"]["secret_key"]
    renamed = s.call("PATCH", f"workspaces/{ws['id']}", json={"name": "renamed"}).json
    assert renamed["name"] == "renamed"
    assert renamed["cloud_specific_details"]["region"] == "eu-west-1"
    assert renamed["last_modified"] >= ws["last_modified"]


def test_put_replaces_the_workspace(login, store):
    s = login()
    ws = s.call("POST", "workspaces", json=AWS).json
    new = {"name": "local now", "cloud_type": "local", "cloud_specific_details": {}}
    replaced = s.call("PUT", f"workspaces/{ws['id']}", json=new)
    assert replaced.status_code == 200, replaced.json
    assert replaced.json["cloud_type"] == "local"
    assert replaced.json["cloud_specific_details"] == {}
    assert store.workspaces.credentials(s.org, ws["id"]) == {}


def test_patch_that_breaks_the_details_is_refused_and_changes_nothing(login):
    s = login()
    ws = s.call("POST", "workspaces", json=AWS).json
    body = assert_error(
        s.call("PATCH", f"workspaces/{ws['id']}", json={"cloud_type": "slurm"}), 400
    )
    assert "slurm_user" in json.dumps(body["errors"])
    assert s.call("GET", f"workspaces/{ws['id']}").json["cloud_type"] == "aws"


def test_list_pages_sorts_and_filters(login):
    s = login()
    for name in ["bravo", "alpha", "charlie", "alpha-2"]:
        s.call("POST", "workspaces", json={"name": name, "cloud_type": "local"})
    names = lambda r: [w["name"] for w in r.json["workspaces"]]  # noqa: E731
    assert names(s.call("GET", "workspaces?sort=name-ascending")) == [
        "alpha",
        "alpha-2",
        "bravo",
        "charlie",
    ]
    assert names(s.call("GET", "workspaces?sort=date-ascending")) == [
        "bravo",
        "alpha",
        "charlie",
        "alpha-2",
    ]
    page = s.call("GET", "workspaces?sort=name-ascending&skip=2&size=1")
    assert names(page) == ["bravo"]
    assert page.json["pagination_info"] == {
        "total_records": 4,
        "total_pages": 4,
        "page_size": 1,
        "page_index": 2,
    }
    assert sorted(names(s.call("GET", "workspaces?name=alpha"))) == ["alpha", "alpha-2"]
    assert names(s.call("GET", "workspaces?name=.*")) == []  # the filter is literal, not a regex


def test_bulk_delete_reports_each_id(login):
    s = login()
    ids = [
        s.call("POST", "workspaces", json={"name": f"w{i}", "cloud_type": "local"}).json["id"]
        for i in range(2)
    ]
    response = s.call("DELETE", "workspaces", json={"workspace_ids": [*ids, "missing"]})
    assert response.status_code == 200
    assert [(r["id"], r["status"]) for r in response.json["results"]] == [
        (ids[0], "deleted"),
        (ids[1], "deleted"),
        ("missing", "not_found"),
    ]
    assert s.call("GET", "workspaces").json["workspaces"] == []


BAD_BODIES = {
    "missing-name": {"cloud_type": "local"},
    "missing-cloud-type": {"name": "x"},
    "wrong-type-name": {"name": 5, "cloud_type": "local"},
    "wrong-type-shared": {"name": "x", "cloud_type": "local", "shared": "maybe"},
    "unknown-cloud-type": {"name": "x", "cloud_type": "dropbox"},
    "unsupported-cloud-type": {"name": "x", "cloud_type": "gcp"},
    "oversize-name": {"name": "x" * 501, "cloud_type": "local"},
    "unknown-field": {"name": "x", "cloud_type": "local", "colour": "blue"},
    "missing-details": {
        "name": "x",
        "cloud_type": "aws",
        "cloud_specific_details": {"region": "r"},
    },
    "unknown-detail": {
        "name": "x",
        "cloud_type": "local",
        "cloud_specific_details": {"bucket": "b"},
    },
    "details-not-object": {"name": "x", "cloud_type": "local", "cloud_specific_details": [1]},
    "hostname-not-list": {
        **SLURM,
        "cloud_specific_details": {**SLURM["cloud_specific_details"], "slurm_hostname": [1]},
    },
    "bad-nested-storage": {
        **LEPTON,
        "cloud_specific_details": {
            **LEPTON["cloud_specific_details"],
            "storage_backend": {"cloud_type": "huggingface"},
        },
    },
    "not-an-object": [1, 2],
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_workspace_bodies_get_400_with_field_details(login, body):
    s = login()
    error = assert_error(s.call("POST", "workspaces", json=body), 400)
    assert error["errors"]
    assert s.call("GET", "workspaces").json["workspaces"] == []


def test_errors_never_echo_credentials(login):
    s = login()
    body = {**AWS, "cloud_specific_details": {**AWS["cloud_specific_details"], "bucket_name": 7}}
    response = s.call("POST", "workspaces", json=body)
    assert_error(response, 400)
    assert "wJalrXUtnFEMI" not in response.get_data(as_text=True)


def test_unsupported_cloud_type_says_so(login):
    body = assert_error(
        login().call("POST", "workspaces", json=BAD_BODIES["unsupported-cloud-type"]), 400
    )
    assert "not supported yet" in body["error_desc"]


def test_malformed_json_is_400(login):
    s = login()
    response = s.call("POST", "workspaces", data='{"name": ', content_type="application/json")
    assert_error(response, 400)


def test_oversize_body_is_413(login, settings):
    s = login()
    big = {"name": "x", "cloud_type": "local", "version": "a" * (settings.max_body_bytes + 1)}
    assert_error(s.call("POST", "workspaces", json=big), 413)


@pytest.mark.parametrize("query", ["skip=-1", "size=abc", "sort=sideways", "bogus=1"])
def test_bad_list_parameters_are_400(login, query):
    assert_error(login().call("GET", f"workspaces?{query}"), 400)


def test_unknown_route_and_wrong_method_have_the_error_shape(login):
    s = login()
    assert_error(s.client.get("/api/v2/nowhere", headers=s.headers), 404)
    assert_error(s.client.get("/nowhere"), 404)
    assert_error(s.client.put("/api/v2/login", json={}), 405)
    assert_error(s.call("POST", "workspaces/some-id", json={}), 405)


def test_a_workspace_active_jobs_use_cannot_be_deleted(login, store):
    s = login()
    ws = s.call("POST", "workspaces", json={**AWS, "name": "in-use"}).json["id"]
    body = {
        "kind": "experiment",
        "network_arch": "classification_pyt",
        "action": "train",
        "workspace": ws,
    }
    job = s.call("POST", "jobs", json=body).json["id"]  # Pending: active
    error = assert_error(s.call("DELETE", f"workspaces/{ws}"), 409)
    assert job in error["error_desc"] and "active jobs" in error["error_desc"]
    bulk = s.call("DELETE", "workspaces", json={"workspace_ids": [ws]}).json["results"]
    assert bulk[0]["status"] == "refused"
    store.db["jobs"].update_one({"_id": job}, {"$set": {"status": "Canceled", "active": False}})
    assert s.call("DELETE", f"workspaces/{ws}").status_code == 200
