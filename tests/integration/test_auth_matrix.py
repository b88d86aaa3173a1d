"""The auth matrix, generated from the OpenAPI document so a new operation is in it the
moment it is served: every operation but login, health and the docs refuses a missing,
expired or malformed token (401) and another org's token (403); admin-only operations
(``x-jobyard-admin``) refuse other users (403); another org's ids are not found (404).
No refusal carries data, and none changes anything."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask

from jobyard.api.auth import PUBLIC_ENDPOINTS
from jobyard.api.tokens import Tokens
from tests import openapi
from tests.helpers import assert_error

pytestmark = pytest.mark.integration

ID_PARAMS = ("job_id", "workspace_id", "dataset_id")
ADMIN_ONLY = {
    f"{method} /api/v2/orgs/{{org_name}}/workspaces/{{workspace_id}}:{action}"
    for method in ("GET", "POST")
    for action in ("backup", "restore")
}
# Valid bodies, by request schema: with one, a refusal cannot be the body's 400. An
# operation whose schema is not here is sent {} and may answer 400 as well as 404.
VALID_BODIES: dict[str, Any] = {
    "WorkspaceWrite": {"name": "stolen", "cloud_type": "local"},
    "WorkspacePatch": {"name": "stolen"},
    "BackupRequest": {"backup_file_name": "stolen.gz"},
    "DatasetWrite": {"type": "object_detection", "format": "coco", "url": "https://x.test/d"},
    "DatasetPatch": {"name": "stolen"},
    "Pause": {},
    "Resume": {},
    "ListFiles": {},
    "Selective": {"best_model": True},
}


def _body(op: openapi.Operation) -> tuple[Any, bool]:
    """The body to send and whether it is known to be valid."""
    schema = op.body_schema()
    if schema is None:
        return None, True
    name = str(schema.get("$ref", "")).rsplit("/", 1)[-1]
    return VALID_BODIES.get(name, {}), name in VALID_BODIES


def _call(client: Any, op: openapi.Operation, paths: dict[str, str], headers: Any) -> Any:
    body, _ = _body(op)
    kwargs: dict[str, Any] = {"method": op.method, "headers": headers}
    if body is not None:
        kwargs["json"] = body
    return client.open(op.url(paths), **kwargs)


def _endpoint(app: Flask, op: openapi.Operation, paths: dict[str, str]) -> str:
    endpoint, _ = app.url_map.bind("localhost").match(op.url(paths), method=op.method)
    return str(endpoint)


def _refusal(response: Any, status: int, op: openapi.Operation, secrets: list[str]) -> str | None:
    """Why ``response`` is not a bare ``status`` error free of ``secrets``, or None."""
    try:
        assert_error(response, status)
    except AssertionError as e:
        return f"{op.name}: {e}"
    text = response.get_data(as_text=True)
    leaked = [s for s in secrets if s in text]
    return f"{op.name}: the refusal shows {leaked}: {text}" if leaked else None


class World:
    """Two orgs, each with a workspace, a dataset and a job named after the org."""

    def __init__(self, app: Flask, client: Any, login: Any) -> None:
        self.app = app
        self.client = client
        self.admin = login("acme", admin=True, user="root")
        self.user = login("acme", user="alice")
        self.other = login("globex", admin=True, user="mallory")
        self.paths = openapi.create_resources(self.admin, name="acme-private")
        self.other_paths = openapi.create_resources(self.other, name="globex-private")
        self.document = openapi.spec(client)
        self.ops = openapi.operations(self.document)

    def protected(self) -> list[openapi.Operation]:
        found = [o for o in self.ops if _endpoint(self.app, o, self.paths) not in PUBLIC_ENDPOINTS]
        assert len(found) > 20, [o.name for o in found]  # the routes matched: 33 today
        return found

    def snapshot(self, session: Any, paths: dict[str, str]) -> dict[str, Any]:
        """What the org's own resources look like to their owner."""
        return {
            kind: session.call("GET", f"{kind}s/{paths[f'{kind}_id']}").json
            for kind in ("job", "workspace", "dataset")
        }


@pytest.fixture
def world(app, client, login):
    return World(app, client, login)


def test_only_login_and_health_are_public_and_the_document_says_so(world):
    public = []
    for op in world.ops:
        is_public = _endpoint(world.app, op, world.paths) in PUBLIC_ENDPOINTS
        assert op.public == is_public, f"{op.name}: security {op.doc.get('security')}"
        if is_public:
            public.append(op.name)
            assert _call(world.client, op, world.paths, {}).status_code != 401, op.name
    assert sorted(public) == [
        "GET /api/v2/health/liveness",
        "GET /api/v2/health/readiness",
        "POST /api/v2/login",
    ]


def _bad_tokens(world: World, store: Any, settings: Any) -> dict[str, dict[str, str]]:
    user = store.accounts.ensure_user("acme", "alice")
    expired = Tokens(settings.jwt_secret, 60).issue(user, now=time.time() - 3600)
    forged = Tokens("another-secret-" + "y" * 32, 600).issue(user)
    valid = world.user.headers["Authorization"]
    return {
        "no token": {},
        "empty bearer": {"Authorization": "Bearer "},
        "not a bearer": {"Authorization": valid.replace("Bearer", "Basic")},
        "expired": {"Authorization": f"Bearer {expired}"},
        "malformed": {"Authorization": "Bearer not.a.jwt"},
        "truncated": {"Authorization": valid[:-5]},
        "signed elsewhere": {"Authorization": f"Bearer {forged}"},
    }


def test_every_protected_operation_refuses_a_missing_expired_or_malformed_token(
    world, store, settings
):
    before = world.snapshot(world.admin, world.paths)
    problems = []
    for label, headers in _bad_tokens(world, store, settings).items():
        for op in world.protected():
            response = _call(world.client, op, world.paths, headers)
            problem = _refusal(response, 401, op, ["acme-private"])
            if problem:
                problems.append(f"{label}: {problem}")
            elif response.headers.get("WWW-Authenticate") != "Bearer":
                problems.append(f"{label}: {op.name}: no WWW-Authenticate: Bearer")
    assert not problems, "\n".join(problems)
    assert world.snapshot(world.admin, world.paths) == before


def test_every_org_operation_refuses_another_orgs_token(world):
    before = world.snapshot(world.admin, world.paths)
    scoped = [o for o in world.protected() if "org_name" in o.path_params]
    assert scoped
    problems = []
    for op in scoped:
        response = _call(world.client, op, world.paths, world.other.headers)
        if problem := _refusal(response, 403, op, ["acme-private"]):
            problems.append(problem)
    assert not problems, "\n".join(problems)
    assert world.snapshot(world.admin, world.paths) == before


def test_admin_only_operations_are_marked_and_refuse_other_users(world):
    marked = [o for o in world.ops if o.admin_only]
    assert ADMIN_ONLY <= {o.name for o in marked}
    before = world.snapshot(world.admin, world.paths)
    problems = []
    for op in marked:
        response = _call(world.client, op, world.paths, world.user.headers)
        if problem := _refusal(response, 403, op, []):
            problems.append(problem)
    assert not problems, "\n".join(problems)
    assert world.snapshot(world.admin, world.paths) == before


def test_no_unmarked_operation_refuses_a_user_for_not_being_an_admin(world):
    """The marks are the whole truth: an admin check the document does not show fails here."""
    refused = [
        op.name
        for op in world.protected()
        if not op.admin_only
        and _call(world.client, op, world.paths, world.user.headers).status_code == 403
    ]
    assert not refused, refused


def test_another_orgs_ids_are_not_found_on_every_operation(world):
    before = world.snapshot(world.other, world.other_paths)
    with_ids = [o for o in world.protected() if set(ID_PARAMS) & set(o.path_params)]
    assert {p for o in with_ids for p in o.path_params} >= set(ID_PARAMS)
    # the caller's own org in the path, the other org's ids in every id parameter
    paths = {**world.other_paths, "org_name": world.paths["org_name"]}
    problems = []
    for op in with_ids:
        response = _call(world.client, op, paths, world.admin.headers)
        _, valid = _body(op)
        allowed = {404} if valid else {404, 400, 409}
        status = response.status_code if response.status_code in allowed else 404
        if problem := _refusal(response, status, op, ["globex-private"]):
            problems.append(problem)
    assert not problems, "\n".join(problems)
    assert world.snapshot(world.other, world.other_paths) == before
