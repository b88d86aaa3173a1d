"""Login, and the guard that makes every other endpoint need a valid token.

The guard runs before every request, so a new blueprint is protected without
remembering to decorate its views; only ``PUBLIC_ENDPOINTS`` are open. A token
for one org is refused (403) on another org's paths, and every store query is
filtered by org, so another org's ids are simply not found (404). Admin-only views
carry ``admin_required``, which both enforces and documents it (``x-jobyard-admin``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import g, request
from flask.views import MethodView

from jobyard.api.errors import Forbidden, TooManyRequests, Unauthorized
from jobyard.api.parser import Blueprint
from jobyard.api.services import principal, services
from jobyard.api.tokens import TokenError
from jobyard.schemas.auth import LoginResponseSchema, LoginSchema
from jobyard.store.accounts import key_prefix

blp = Blueprint("auth", __name__, url_prefix="/api/v2", description="Authentication")

PUBLIC_ENDPOINTS = frozenset(
    {
        "auth.Login",
        "health.Liveness",
        "health.Readiness",
        "api-docs.openapi_json",
        "api-docs.openapi_swagger_ui",
        "api-docs.openapi_redoc",
        "static",
        "ui.index",  # the dashboard's files: no data, the page asks the API for it
        "ui.asset",
    }
)


@blp.route("/login")
class Login(MethodView):
    @blp.doc(security=[])
    @blp.arguments(LoginSchema)
    @blp.response(200, LoginResponseSchema)
    @blp.alt_response(401, description="Unknown key or org")
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Exchange an API key for a token

        The key is a jobyard API key (``jobyard admin create-key``), sent in
        TAO's ``ngc_key`` field so TAO scripts work unchanged.
        """
        svc = services()
        key_id = key_prefix(body["ngc_key"])
        client = request.remote_addr or ""
        limited = svc.login_throttle.check(key_id, client)
        if limited is not None:
            raise TooManyRequests(
                f"too many failed logins for {limited.what}; try again in {limited.retry_after} s",
                retry_after=limited.retry_after,
            )
        user = svc.store.accounts.authenticate(body["ngc_key"], body["ngc_org_name"])
        if user is None:
            svc.login_throttle.failed(key_id, client)
            raise Unauthorized("invalid API key for this org")
        return {
            "user_id": user.id,
            "token": svc.tokens.issue(user),
            "user_name": user.name,
            "user_email": user.email,
        }


def require_token() -> None:
    """before_request hook: authenticate, then check the org in the path."""
    if request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS:
        return  # unknown routes fall through to a 404/405
    if request.method == "OPTIONS":
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>' from /login")
    try:
        g.principal = services().tokens.verify(token.strip())
    except TokenError as e:
        raise Unauthorized(str(e)) from e
    org = (request.view_args or {}).get("org_name")
    if org is not None and org != g.principal.org:
        raise Forbidden(f"this token is for org {g.principal.org}, not {org}")


ADMIN_EXTENSION = "x-jobyard-admin"
_ADMIN_DOC = {
    ADMIN_EXTENSION: True,
    "responses": {
        "403": {
            "description": "The token is not an admin's",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    },
}


def require_admin() -> None:
    if not principal().is_admin:
        raise Forbidden("this action needs an admin key")


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Only admins may call this view: checked before the body is read, and marked in
    the OpenAPI document, where the auth tests find every admin-only operation."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        require_admin()
        return view(*args, **kwargs)

    documented: Callable[..., Any] = Blueprint.doc(**_ADMIN_DOC)(guarded)
    return documented
