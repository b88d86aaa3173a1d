"""Login and the auth matrix: no token, bad token, expired token, other org."""

from __future__ import annotations

import json
import time

import pytest

from jobyard import embedded
from jobyard.api import create_app
from jobyard.api.tokens import Tokens
from tests.helpers import assert_error

pytestmark = pytest.mark.integration


def test_login_returns_tao_fields_and_a_token_that_works(client, store, login):
    session = login("acme")
    response = client.get("/api/v2/orgs/acme/workspaces", headers=session.headers)
    assert response.status_code == 200


def test_login_accepts_json_posted_as_a_form_like_seed_000s_curl(client, store):
    user = store.accounts.ensure_user("acme", "bob", "bob@acme.test")
    key = store.accounts.create_key(user)
    body = json.dumps({"ngc_key": key, "ngc_org_name": "acme"})
    response = client.post(
        "/api/v2/login", data=body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert set(response.json) == {"user_id", "token", "user_name", "user_email"}
    assert response.json["user_name"] == "bob"
    assert response.json["user_email"] == "bob@acme.test"
    assert response.json["user_id"] == user.id


@pytest.mark.parametrize(
    "mutate",
    [
        lambda key, org: ("jyk_deadbeef_" + "0" * 48, org),
        lambda key, org: (key[:-1] + ("0" if key[-1] != "0" else "1"), org),
        lambda key, org: (key, "other"),
        lambda key, org: ("not-a-key", org),
    ],
    ids=["unknown-key", "wrong-secret", "wrong-org", "garbage"],
)
def test_login_refuses_a_bad_key_with_401(client, store, mutate):
    key = store.accounts.create_key(store.accounts.ensure_user("acme", "bob"))
    ngc_key, org = mutate(key, "acme")
    response = client.post("/api/v2/login", json={"ngc_key": ngc_key, "ngc_org_name": org})
    assert_error(response, 401)


def test_revoked_key_cannot_log_in(client, store):
    key = store.accounts.create_key(store.accounts.ensure_user("acme", "bob"))
    store.accounts.revoke_key(key.split("_")[1])
    response = client.post("/api/v2/login", json={"ngc_key": key, "ngc_org_name": "acme"})
    assert_error(response, 401)


def test_api_keys_are_stored_hashed(store):
    key = store.accounts.create_key(store.accounts.ensure_user("acme", "bob"))
    secret = key.split("_")[2]
    raw = json.dumps(list(store.db["api_keys"].find()), default=str)
    assert secret not in raw


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"ngc_key": "x"},
        {"ngc_key": 5, "ngc_org_name": "acme"},
        {"ngc_key": "x" * 1001, "ngc_org_name": "a"},
    ],
    ids=["empty", "missing-org", "wrong-type", "oversize"],
)
def test_login_rejects_bad_bodies_with_400(client, body):
    body = assert_error(client.post("/api/v2/login", json=body), 400)
    assert "errors" in body


def test_login_rejects_malformed_json_with_400(client):
    response = client.post("/api/v2/login", data="{not json", content_type="application/json")
    assert_error(response, 400)


def test_no_token_is_401(client):
    assert_error(client.get("/api/v2/orgs/acme/workspaces"), 401)


@pytest.mark.parametrize("header", ["Bearer", "Bearer garbage", "Basic abc", "Bearer a.b.c"])
def test_malformed_token_is_401(client, header):
    assert_error(client.get("/api/v2/orgs/acme/workspaces", headers={"Authorization": header}), 401)


def test_expired_token_is_401(client, store, settings):
    user = store.accounts.ensure_user("acme", "bob")
    assert settings.jwt_secret
    token = Tokens(settings.jwt_secret, 60).issue(user, now=time.time() - 3600)
    response = client.get(
        "/api/v2/orgs/acme/workspaces", headers={"Authorization": f"Bearer {token}"}
    )
    body = assert_error(response, 401)
    assert "expired" in body["error_desc"]


def test_token_signed_with_another_secret_is_401(client, store):
    user = store.accounts.ensure_user("acme", "bob")
    token = Tokens("some-other-secret-" + "y" * 32, 600).issue(user)
    response = client.get(
        "/api/v2/orgs/acme/workspaces", headers={"Authorization": f"Bearer {token}"}
    )
    assert_error(response, 401)


def test_token_for_one_org_is_403_on_another_orgs_paths(login):
    alice = login("acme")
    response = alice.client.get("/api/v2/orgs/globex/workspaces", headers=alice.headers)
    assert_error(response, 403)


def test_another_orgs_workspace_is_404(login):
    alice, mallory = login("acme"), login("globex", user="mallory")
    created = alice.call("POST", "workspaces", json={"name": "w", "cloud_type": "local"})
    ws_id = created.json["id"]
    for method in ("GET", "DELETE", "PATCH"):
        kwargs = {"json": {"name": "stolen"}} if method == "PATCH" else {}
        assert_error(mallory.call(method, f"workspaces/{ws_id}", **kwargs), 404)
    listed = mallory.call("GET", "workspaces").json
    assert listed["workspaces"] == []
    assert alice.call("GET", f"workspaces/{ws_id}").json["name"] == "w"


def test_health_and_docs_need_no_token(client):
    assert client.get("/api/v2/health/liveness").status_code == 200
    assert client.get("/api/v2/openapi.json").status_code == 200


def test_repeated_bad_keys_are_held_back_per_key_and_per_client(settings, store):
    app = create_app(
        settings.replace(
            login_failures_per_key=3, login_failures_per_client=5, login_failure_window_seconds=60
        ),
        store=store,
    )
    client = app.test_client()
    key = store.accounts.create_key(store.accounts.ensure_user("acme", "bob"))
    key_id, secret = key.split("_")[1], key.split("_")[2]
    wrong = f"jyk_{key_id}_{'0' * len(secret)}"

    def login(ngc_key, address):
        return client.post(
            "/api/v2/login",
            json={"ngc_key": ngc_key, "ngc_org_name": "acme"},
            environ_base={"REMOTE_ADDR": address},
        )

    for n in range(3):  # three guesses at one key, from three addresses
        assert_error(login(wrong, f"10.0.0.{n}"), 401)
    held = assert_error(login(key, "10.0.1.1"), 429)  # even the right key, for the window
    assert "too many failed logins for this key" in held["error_desc"]
    assert 1 <= int(login(key, "10.0.1.1").headers["Retry-After"]) <= 60

    other = store.accounts.create_key(store.accounts.ensure_user("acme", "carol"))
    for n in range(5):  # five different made-up keys from one address
        assert_error(login(f"jyk_{n:016x}_{'1' * 48}", "10.0.2.2"), 401)
    body = assert_error(login(other, "10.0.2.2"), 429)
    assert "this client" in body["error_desc"]
    assert login(other, "10.0.3.3").status_code == 200  # another client is not held back


def test_login_still_works_when_redis_is_down(settings, store):
    dead = settings.replace(redis_url=f"redis://127.0.0.1:{embedded.free_port()}/0")
    client = create_app(dead, store=store).test_client()
    key = store.accounts.create_key(store.accounts.ensure_user("acme", "bob"))
    body = {"ngc_key": key, "ngc_org_name": "acme"}
    assert client.post("/api/v2/login", json=body).status_code == 200
    assert_error(client.post("/api/v2/login", json={**body, "ngc_key": key + "x"}), 401)
