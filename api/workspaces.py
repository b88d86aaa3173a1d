"""Workspaces: where a team's datasets live and results go (seed 000)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from jobyard.api.errors import BadRequest
from jobyard.api.listing import count_route, requested_page
from jobyard.api.parser import Blueprint
from jobyard.api.services import principal, services
from jobyard.backends.storage.errors import StorageError
from jobyard.schemas.cloud import normalise
from jobyard.schemas.common import BulkResultsSchema
from jobyard.schemas.workspace import (
    WORKSPACE_FIELDS,
    WorkspaceConfig,
    WorkspaceFilterArgsSchema,
    WorkspaceIdsSchema,
    WorkspaceListArgsSchema,
    WorkspaceListSchema,
    WorkspacePatchSchema,
    WorkspaceSchema,
    WorkspaceWriteSchema,
)
from jobyard.store.errors import Conflict, NotFound
from jobyard.store.workspaces import Workspace

blp = Blueprint(
    "workspaces",
    __name__,
    url_prefix="/api/v2/orgs/<string:org_name>/workspaces",
    description="Cloud storage and compute a team's jobs use",
)


def _validated(merged: dict[str, Any]) -> dict[str, Any]:
    """Run a merged PUT/PATCH result through the full create-time checks."""
    try:
        loaded: dict[str, Any] = WorkspaceWriteSchema().load(merged)
    except ma.ValidationError as e:
        raise BadRequest("invalid workspace", e.normalized_messages()) from e
    return loaded


def _check_storage(fields: dict[str, Any], org: str, workspace_id: str = "") -> None:
    """Refuse a workspace whose storage is not allowed (a local path outside the org's
    directory), or cannot be reached and written, saying why. On update the probe runs
    only when where it points changed: a rename needs no bucket."""
    svc = services()
    details = normalise(fields["cloud_type"], fields.get("cloud_specific_details") or {})
    candidate = WorkspaceConfig(workspace_id or "new", org, fields["cloud_type"], 0.0, details)
    probe = svc.settings.workspace_storage_check
    if probe and workspace_id:
        before = svc.store.workspaces.config(org, workspace_id)
        probe = (before.cloud_type, dict(before.details)) != (fields["cloud_type"], details)
    try:
        svc.resources.check_storage(candidate, probe)
    except StorageError as e:
        message = f"workspace storage check failed: {e}"
        raise BadRequest(message, {"cloud_specific_details": [message]}) from e


count_route(
    blp,
    "/count",
    WorkspaceFilterArgsSchema,
    WORKSPACE_FIELDS,
    "workspaces",
    lambda org, page, _: services().store.workspaces.count(org, page),
)


@blp.route("")
class WorkspaceCollection(MethodView):
    @blp.arguments(WorkspaceListArgsSchema, location="query")
    @blp.response(200, WorkspaceListSchema)
    def get(self, args: dict[str, Any], org_name: str) -> dict[str, Any]:
        """List workspaces"""
        page = requested_page(args, WORKSPACE_FIELDS)
        items, info = services().store.workspaces.list(org_name, page)
        return {"workspaces": items, "pagination_info": info}

    @blp.arguments(WorkspaceWriteSchema)
    @blp.response(201, WorkspaceSchema)
    def post(self, body: dict[str, Any], org_name: str) -> Workspace:
        """Create a workspace

        ``cloud_specific_details`` is checked against the cloud type; its
        credentials are encrypted at rest and shown masked from then on.
        """
        force = body.pop("force_create", False)
        _check_storage(body, org_name)
        return services().store.workspaces.create(org_name, principal().user_id, body, force)

    @blp.arguments(WorkspaceIdsSchema)
    @blp.response(200, BulkResultsSchema)
    def delete(self, body: dict[str, Any], org_name: str) -> dict[str, Any]:
        """Delete several workspaces; reports the outcome of each"""
        repo = services().store.workspaces
        results = []
        for workspace_id in body["workspace_ids"]:
            try:
                repo.delete(org_name, workspace_id)
                results.append({"id": workspace_id, "status": "deleted"})
            except NotFound as e:
                results.append({"id": workspace_id, "status": "not_found", "error_desc": str(e)})
            except Conflict as e:
                results.append({"id": workspace_id, "status": "refused", "error_desc": str(e)})
        return {"results": results}


@blp.route("/<string:workspace_id>")
class WorkspaceItem(MethodView):
    @blp.response(200, WorkspaceSchema)
    def get(self, org_name: str, workspace_id: str) -> Workspace:
        """Get a workspace"""
        return services().store.workspaces.get(org_name, workspace_id)

    @blp.arguments(WorkspaceWriteSchema)
    @blp.response(200, WorkspaceSchema)
    def put(self, body: dict[str, Any], org_name: str, workspace_id: str) -> Workspace:
        """Replace a workspace (masked credentials sent back are kept)"""
        repo = services().store.workspaces
        body.pop("force_create", None)
        merged = _validated(repo.merged_update(org_name, workspace_id, body, partial=False))
        _check_storage(merged, org_name, workspace_id)
        return repo.replace(org_name, workspace_id, merged)

    @blp.arguments(WorkspacePatchSchema)
    @blp.response(200, WorkspaceSchema)
    def patch(self, body: dict[str, Any], org_name: str, workspace_id: str) -> Workspace:
        """Update some fields of a workspace; details are merged"""
        repo = services().store.workspaces
        merged = _validated(repo.merged_update(org_name, workspace_id, body, partial=True))
        _check_storage(merged, org_name, workspace_id)
        return repo.replace(org_name, workspace_id, merged)

    @blp.response(200, WorkspaceSchema)
    def delete(self, org_name: str, workspace_id: str) -> Workspace:
        """Delete a workspace"""
        return services().store.workspaces.delete(org_name, workspace_id)
