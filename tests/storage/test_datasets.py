"""Datasets over HTTP against a real S3 workspace: CRUD, enums, layout checks,
duplicates, and deletion refused while a job uses the dataset."""

from __future__ import annotations

import json
import uuid

import pytest

from jobyard.schemas.cloud import MASK
from jobyard.store.fingerprint import forced
from tests.helpers import assert_error

pytestmark = pytest.mark.integration


@pytest.fixture
def coco(s3_server, bucket):
    """A tiny COCO tree at coco/ and a folder without images at broken/."""
    client = s3_server.client()
    for key in (
        "coco/annotations.json",
        "coco/images/a.jpg",
        "coco/images/b.jpg",
        "broken/annotations.json",
    ):
        client.put_object(Bucket=bucket, Key=key, Body=b"{}")
    return bucket


@pytest.fixture
def s(login):
    return login()


@pytest.fixture
def ws(s, seaweed_workspace, coco):
    return seaweed_workspace(s)["id"]


def _coco(ws_id, **extra):
    return {
        "name": "coco-train",
        "type": "object_detection",
        "format": "coco",
        "workspace": ws_id,
        "cloud_file_path": "/coco",
        "use_for": ["training"],
        **extra,
    }


def test_create_get_and_list_a_coco_dataset(s, ws):
    created = s.call("POST", "datasets", json=_coco(ws))
    assert created.status_code == 201, created.json
    ds = created.json
    assert ds["status"] == "pull_complete" and ds["format"] == "coco"
    assert ds["workspace"] == ws and ds["use_for"] == ["training"]
    assert s.call("GET", f"datasets/{ds['id']}").json == {**ds, "jobs": {}}
    listed = s.call("GET", "datasets").json
    assert [d["id"] for d in listed["datasets"]] == [ds["id"]]
    assert listed["pagination_info"]["total_records"] == 1


def test_a_layout_without_images_is_refused_unless_validation_is_skipped(s, ws):
    body = assert_error(s.call("POST", "datasets", json=_coco(ws, cloud_file_path="broken")), 400)
    assert "missing images/" in body["error_desc"] and "skip_validation" in body["error_desc"]
    empty = assert_error(
        s.call(
            "POST",
            "datasets",
            json=_coco(ws, cloud_file_path="nothing", format="custom", type="user_custom"),
        ),
        400,
    )
    assert "nothing found" in empty["error_desc"]
    skipped = s.call(
        "POST", "datasets", json=_coco(ws, cloud_file_path="broken", skip_validation=True)
    )
    assert skipped.status_code == 201 and skipped.json["skip_validation"] is True


BAD = {
    "missing-type": {"format": "coco"},
    "missing-format": {"type": "object_detection"},
    "unknown-type": {"type": "cats", "format": "coco"},
    "unknown-format": {"type": "object_detection", "format": "yolo"},
    "format-of-another-type": {"type": "object_detection", "format": "unet"},
    "unknown-intent": {"type": "object_detection", "format": "coco", "use_for": ["fun"]},
    "repeated-intent": {
        "type": "object_detection",
        "format": "coco",
        "use_for": ["training", "training"],
    },
    "path-without-workspace": {
        "type": "object_detection",
        "format": "coco",
        "cloud_file_path": "coco",
    },
    "path-escape": {"type": "object_detection", "format": "coco", "cloud_file_path": "../x"},
    "not-a-url": {"type": "object_detection", "format": "coco", "url": "ftp://x/y"},
    "oversize-name": {"type": "object_detection", "format": "coco", "name": "n" * 501},
    "unknown-field": {"type": "object_detection", "format": "coco", "colour": "red"},
    "wrong-type-shared": {"type": "object_detection", "format": "coco", "shared": "maybe"},
}


@pytest.mark.parametrize("body", BAD.values(), ids=BAD.keys())
def test_bad_bodies_are_400_with_the_error_shape(s, body):
    assert_error(s.call("POST", "datasets", json=body), 400)


def test_a_workspace_of_another_org_is_not_found(login, ws):
    other = login(org="other")
    body = assert_error(other.call("POST", "datasets", json=_coco(ws)), 400)
    assert "not found" in body["error_desc"]


def test_calibration_intent_and_url_datasets_are_accepted(s):
    body = {
        "type": "image_classification",
        "format": "classification_pyt",
        "url": "https://example.com/data.tar.gz",
        "use_for": ["calibration", "testing"],
    }
    created = s.call("POST", "datasets", json=body)
    assert created.status_code == 201, created.json
    assert created.json["status"] == "starting"


def test_identical_datasets_are_refused_unless_forced(s, ws):
    first = s.call("POST", "datasets", json=_coco(ws)).json
    body = assert_error(s.call("POST", "datasets", json=_coco(ws)), 409)
    assert first["id"] in body["error_desc"]
    again = s.call("POST", "datasets", json=_coco(ws, force_create=True))
    assert again.status_code == 201 and again.json["id"] != first["id"]


def test_list_filters_sorts_and_pages(s, ws):
    for name, dtype, fmt in [
        ("bravo", "object_detection", "coco"),
        ("alpha", "segmentation", "unet"),
        ("charlie", "object_detection", "kitti"),
    ]:
        body = {"name": name, "type": dtype, "format": fmt}
        assert s.call("POST", "datasets", json=body).status_code == 201
    names = lambda q: [d["name"] for d in s.call("GET", f"datasets{q}").json["datasets"]]  # noqa: E731
    assert names("?sort=name-ascending") == ["alpha", "bravo", "charlie"]
    assert names("?sort=date-ascending") == ["bravo", "alpha", "charlie"]
    assert names("?type=object_detection&sort=name-descending") == ["charlie", "bravo"]
    assert names("?format=unet") == ["alpha"]
    assert names("?name=rav") == ["bravo"]
    page = s.call("GET", "datasets?sort=name-ascending&skip=1&size=1").json
    assert [d["name"] for d in page["datasets"]] == ["bravo"]
    assert page["pagination_info"]["total_pages"] == 3
    assert_error(s.call("GET", "datasets?format=yolo"), 400)
    assert_error(s.call("GET", "datasets?colour=red"), 400)


def test_patch_merges_and_a_change_that_breaks_the_layout_changes_nothing(s, ws):
    ds = s.call("POST", "datasets", json=_coco(ws)).json
    renamed = s.call("PATCH", f"datasets/{ds['id']}", json={"name": "renamed"})
    assert renamed.status_code == 200, renamed.json
    assert renamed.json["name"] == "renamed" and renamed.json["format"] == "coco"
    body = assert_error(s.call("PATCH", f"datasets/{ds['id']}", json={"format": "kitti"}), 400)
    assert "labels/" in body["error_desc"]
    assert_error(s.call("PATCH", f"datasets/{ds['id']}", json={"format": "unet"}), 400)
    assert s.call("GET", f"datasets/{ds['id']}").json["format"] == "coco"


def test_put_replaces_the_dataset(s, ws):
    ds = s.call("POST", "datasets", json=_coco(ws, description="old")).json
    new = {
        "name": "now a url",
        "type": "object_detection",
        "format": "coco",
        "url": "https://example.com/coco.tar.gz",
    }
    replaced = s.call("PUT", f"datasets/{ds['id']}", json=new)
    assert replaced.status_code == 200, replaced.json
    out = replaced.json
    assert out["workspace"] is None and out["cloud_file_path"] is None
    assert out["description"] == "" and out["created_on"] == ds["created_on"]


def test_client_secret_is_encrypted_and_masked(s, store):
    body = {"type": "vlm", "format": "default", "client_id": "c", "client_secret": "hush-123"}
    ds = s.call("POST", "datasets", json=body)
    assert ds.status_code == 201 and ds.json["client_secret"] == MASK
    assert "hush-123" not in json.dumps(list(store.db["datasets"].find()), default=str)
    patched = s.call(
        "PATCH", f"datasets/{ds.json['id']}", json={**body, "client_secret": MASK, "name": "n"}
    )
    assert patched.status_code == 200
    doc = store.datasets.get(s.org, ds.json["id"])
    assert store.datasets.secret(doc) == "hush-123"


def _job_using(store, s, dataset_id, **fields):
    return store.jobs.create(
        s.org,
        "u",
        {"kind": "experiment", "action": "train", "name": "j", **fields},
        "process",
        forced(),
    )


def test_delete_is_refused_while_an_active_job_uses_the_dataset(s, ws, store):
    ds = s.call("POST", "datasets", json=_coco(ws)).json
    job = _job_using(store, s, ds["id"], train_datasets=[ds["id"]])
    _job_using(store, s, ds["id"], eval_dataset_uri="seaweedfs://b/" + ds["id"])  # a path
    assert list(s.call("GET", f"datasets/{ds['id']}").json["jobs"]) == [job["_id"]]
    body = assert_error(s.call("DELETE", f"datasets/{ds['id']}"), 409)
    assert job["_id"] in body["error_desc"]
    bulk = s.call("DELETE", "datasets", json={"dataset_ids": [ds["id"], "missing"]}).json
    assert [r["status"] for r in bulk["results"]] == ["refused", "not_found"]
    store.db["jobs"].update_one({"_id": job["_id"]}, {"$set": {"status": "Done", "active": False}})
    assert s.call("DELETE", f"datasets/{ds['id']}").status_code == 200
    assert_error(s.call("GET", f"datasets/{ds['id']}"), 404)


def test_bulk_delete_reports_each_id(s):
    ids = [
        s.call("POST", "datasets", json={"name": f"d{i}", "type": "vlm", "format": "default"}).json[
            "id"
        ]
        for i in range(2)
    ]
    missing = str(uuid.uuid4())
    results = s.call("DELETE", "datasets", json={"dataset_ids": [*ids, missing]}).json["results"]
    assert [(r["id"], r["status"]) for r in results] == [
        (ids[0], "deleted"),
        (ids[1], "deleted"),
        (missing, "not_found"),
    ]
    assert s.call("GET", "datasets").json["datasets"] == []


def test_get_formats_by_type_and_all(s):
    det = s.call("GET", "datasets:get_formats?dataset_type=object_detection").json
    assert "coco" in det["dataset_formats"] and "unet" not in det["dataset_formats"]
    assert det["accepted_dataset_intents"] == ["training", "evaluation", "testing", "calibration"]
    every = s.call("GET", "datasets:get_formats").json["dataset_formats"]
    assert set(det["dataset_formats"]) < set(every) and "visual_changenet_segment" in every
    assert_error(s.call("GET", "datasets:get_formats?dataset_type=cats"), 400)


def test_unknown_and_foreign_datasets_are_404(login, s):
    ds = s.call("POST", "datasets", json={"type": "vlm", "format": "default"}).json
    assert_error(s.call("GET", "datasets/nope"), 404)
    other = login(org="other")
    assert_error(other.call("GET", f"datasets/{ds['id']}"), 404)
    assert_error(other.call("DELETE", f"datasets/{ds['id']}"), 404)
    assert_error(other.call("PATCH", f"datasets/{ds['id']}", json={"name": "x"}), 404)
