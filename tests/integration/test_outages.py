"""Outages answer 503 in the one error shape with a retry hint, and lose nothing: MongoDB
going down mid-request, Redis down when a job is created."""

from __future__ import annotations

import pytest

from jobyard import embedded
from jobyard.api import create_app
from jobyard.store import connect
from jobyard.store.crypto import Cipher
from tests.conftest import ENCRYPTION_KEY
from tests.helpers import assert_error
from tests.integration.test_engine import train

pytestmark = pytest.mark.integration


@pytest.fixture
def mortal_mongo(tmp_path):
    """A MongoDB-wire server of this test's own, which the test stops."""
    child = embedded.start_mongo(tmp_path / "own-mongo")
    yield child
    child.stop()


@pytest.fixture
def mortal_store(mortal_mongo):
    store = connect(mortal_mongo.url, "outage", Cipher(ENCRYPTION_KEY), timeout_ms=300)
    store.ensure_indexes()
    yield store
    store.db.client.close()


def test_mongodb_down_mid_session_is_a_503_with_retry_after(settings, mortal_mongo, mortal_store):
    store = mortal_store
    client = create_app(settings.replace(mongo_uri=mortal_mongo.url), store=store).test_client()
    key = store.accounts.create_key(store.accounts.ensure_user("acme", "bob"))
    token = client.post("/api/v2/login", json={"ngc_key": key, "ngc_org_name": "acme"}).json
    headers = {"Authorization": f"Bearer {token['token']}"}
    assert client.get("/api/v2/orgs/acme/jobs", headers=headers).status_code == 200

    mortal_mongo.stop()

    for method, path, body in (
        ("GET", "jobs", None),
        ("GET", "workspaces", None),
        ("POST", "workspaces", {"name": "w", "cloud_type": "local"}),
        ("GET", "jobs/0b3e1c9a-1111-4222-8333-944455556666", None),
    ):
        response = client.open(
            f"/api/v2/orgs/acme/{path}", method=method, headers=headers, json=body
        )
        error = assert_error(response, 503)
        assert "MongoDB unreachable" in error["error_desc"]
        assert int(response.headers["Retry-After"]) > 0
    # login too, and readiness says which dependency is down
    assert_error(client.post("/api/v2/login", json={"ngc_key": key, "ngc_org_name": "acme"}), 503)
    assert_error(client.get("/api/v2/health/readiness"), 503)


def test_redis_down_at_create_keeps_the_job_for_the_tick(settings, store, login):
    dead = settings.replace(redis_url=f"redis://127.0.0.1:{embedded.free_port()}/0")
    app = create_app(dead, store=store)
    s = login()
    s.client = app.test_client()
    job_id = train(s, epochs=1)  # 201: stored as Pending; the tick dispatches it later
    assert store.jobs.find(job_id)["status"] == "Pending"


def test_a_number_mongodb_cannot_hold_is_a_400_not_a_500(login):
    s = login()
    body = {
        "name": "lepton",
        "cloud_type": "lepton",
        "cloud_specific_details": {
            "lepton_workspace_id": "abc123xy",
            "lepton_auth_token": "t",
            "lepton_mounts": [{"path": "/x", "size": 10**30}],
            "storage_backend": {
                "storage_type": "seaweedfs",
                "access_key": "a",
                "secret_key": "b",
                "endpoint_url": "http://127.0.0.1:1",
                "cloud_bucket_name": "c",
            },
        },
    }
    error = assert_error(s.call("POST", "workspaces", json=body), 400)
    assert "integers must fit in 8 bytes" in error["error_desc"]
    assert s.call("GET", "workspaces").json["pagination_info"]["total_records"] == 0
