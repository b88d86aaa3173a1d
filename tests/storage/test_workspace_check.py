"""Creating or changing a workspace checks that its bucket can be reached and
written, and says which part is wrong."""

from __future__ import annotations

import pytest

from tests.helpers import assert_error

pytestmark = pytest.mark.integration


def _body(details, cloud_type="seaweedfs"):
    return {"name": "w", "cloud_type": cloud_type, "cloud_specific_details": details}


def test_good_credentials_create_the_workspace_and_leave_no_probe(login, s3_server, bucket):
    s = login()
    response = s.call("POST", "workspaces", json=_body(s3_server.details(bucket)))
    assert response.status_code == 201, response.json
    assert s3_server.client().list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_a_wrong_secret_is_refused(login, s3_server, bucket):
    s = login()
    details = s3_server.details(bucket, secret_key="not-the-secret")
    body = assert_error(s.call("POST", "workspaces", json=_body(details)), 400)
    assert "refused" in body["error_desc"] and "SignatureDoesNotMatch" in body["error_desc"]
    assert "not-the-secret" not in str(body)
    assert s.call("GET", "workspaces").json["workspaces"] == []


def test_an_unknown_access_key_is_refused(login, s3_server, bucket):
    s = login()
    details = s3_server.details(bucket, access_key="nobody")
    body = assert_error(s.call("POST", "workspaces", json=_body(details)), 400)
    assert "InvalidAccessKeyId" in body["error_desc"]


def test_a_missing_bucket_is_named(login, s3_server):
    s = login()
    body = assert_error(
        s.call("POST", "workspaces", json=_body(s3_server.details("no-such-bucket"))), 400
    )
    assert "'no-such-bucket' does not exist" in body["error_desc"]


def test_an_unreachable_endpoint_is_named(login, s3_server, bucket):
    s = login()
    details = s3_server.details(bucket, endpoint_url="http://127.0.0.1:9")
    body = assert_error(s.call("POST", "workspaces", json=_body(details)), 400)
    assert "unreachable" in body["error_desc"]
    assert body["errors"]["cloud_specific_details"]


def test_aws_workspaces_with_an_endpoint_are_checked_too(login, s3_server, bucket):
    s = login()
    details = {
        "access_key": s3_server.access_key,
        "secret_key": "wrong",
        "region": "us-east-1",
        "bucket_name": bucket,
        "endpoint_url": s3_server.endpoint,
    }
    assert_error(s.call("POST", "workspaces", json=_body(details, "aws")), 400)
    details["secret_key"] = s3_server.secret_key
    assert s.call("POST", "workspaces", json=_body(details, "aws")).status_code == 201


def test_patch_and_put_to_bad_credentials_are_refused_and_change_nothing(
    login, store, s3_server, bucket, seaweed_workspace
):
    s = login()
    ws = seaweed_workspace(s)
    bad = {"cloud_specific_details": {"secret_key": "wrong"}}
    assert_error(s.call("PATCH", f"workspaces/{ws['id']}", json=bad), 400)
    put = _body(s3_server.details("missing-bucket"))
    assert_error(s.call("PUT", f"workspaces/{ws['id']}", json=put), 400)
    creds = store.workspaces.credentials(s.org, ws["id"])
    assert creds["secret_key"] == s3_server.secret_key
    assert creds["cloud_bucket_name"] == bucket


def test_local_workspace_paths_must_exist(login, settings):
    s = login()
    org_dir = settings.workspace_root / s.org
    missing = _body({"path": str(org_dir / "nope")}, "local")
    body = assert_error(s.call("POST", "workspaces", json=missing), 400)
    assert "does not exist" in body["error_desc"]
    (org_dir / "here").mkdir(parents=True)
    good = _body({"path": str(org_dir / "here")}, "local")
    assert s.call("POST", "workspaces", json=good).status_code == 201
    relative = _body({"path": "here"}, "local")  # relative to the org's directory
    assert s.call("POST", "workspaces", json={**relative, "name": "r"}).status_code == 201


@pytest.mark.parametrize(
    "path",
    ["/etc", "..", "../other-org", "here/../../other-org/data", "/tmp", "link-out"],
)
def test_a_local_workspace_path_outside_the_orgs_directory_is_refused(login, settings, path):
    s = login()
    org_dir = settings.workspace_root / s.org
    (org_dir / "here").mkdir(parents=True)
    (settings.workspace_root / "other-org" / "data").mkdir(parents=True)
    (org_dir / "link-out").symlink_to(settings.workspace_root / "other-org" / "data")
    for probe in (True, False):  # refused whether or not the storage itself is probed
        s.client.application.extensions["jobyard"].settings = settings.replace(
            workspace_storage_check=probe
        )
        body = assert_error(s.call("POST", "workspaces", json=_body({"path": path}, "local")), 400)
        assert "outside this org's local workspace directory" in body["error_desc"]
        assert not (settings.workspace_root / "other-org" / "data").joinpath("x").exists()


def test_a_rename_needs_no_bucket_but_a_new_location_is_checked(
    login, s3_server, bucket, seaweed_workspace
):
    s = login()
    ws = seaweed_workspace(s)
    s3_server.client().delete_bucket(Bucket=bucket)  # the bucket went away
    renamed = s.call("PATCH", f"workspaces/{ws['id']}", json={"name": "renamed"})
    assert renamed.status_code == 200, renamed.json
    moved = {"cloud_specific_details": {"region": "eu-west-1"}}
    body = assert_error(s.call("PATCH", f"workspaces/{ws['id']}", json=moved), 400)
    assert "does not exist" in body["error_desc"]


def test_a_local_workspace_dataset_is_checked_on_disk(login, settings):
    s = login()
    root = settings.workspace_root / s.org / "data"
    (root / "coco" / "images").mkdir(parents=True)
    (root / "coco" / "images" / "a.jpg").write_bytes(b"x")
    body = {"name": "w", "cloud_type": "local", "cloud_specific_details": {"path": str(root)}}
    ws = s.call("POST", "workspaces", json=body).json["id"]
    dataset = {
        "type": "object_detection",
        "format": "coco",
        "workspace": ws,
        "cloud_file_path": "coco",
    }
    refused = assert_error(s.call("POST", "datasets", json=dataset), 400)
    assert "missing annotations.json" in refused["error_desc"]
    (root / "coco" / "annotations.json").write_text("{}")
    assert s.call("POST", "datasets", json=dataset).status_code == 201
