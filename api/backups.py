"""Admin-only backup and restore of jobyard's state through a workspace's
bucket (seed 000): ``POST /workspaces/{id}:backup`` and ``:restore`` start a
task on the ``maintenance`` queue and answer 202 at once; ``GET`` on the same
paths shows the latest one's status and progress."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from jobyard.api.auth import admin_required
from jobyard.api.datasets import workspace_storage
from jobyard.api.errors import Missing, ServiceUnavailable, annotated
from jobyard.api.parser import Blueprint
from jobyard.api.services import principal, services
from jobyard.backends.storage import ObjectNotFound, StorageError
from jobyard.schemas.maintenance import BackupRequestSchema, OperationSchema, OperationState
from jobyard.store.operations import public
from jobyard.workers.celery_app import MAINTENANCE_QUEUE
from jobyard.workers.maintenance import TASK

blp = Blueprint(
    "workspace_backups",
    __name__,
    url_prefix="/api/v2/orgs/<string:org_name>/workspaces",
    description="Back up and restore jobyard's state (admins only)",
)


def _start(action: str, org: str, workspace_id: str, file_name: str) -> dict[str, Any]:
    svc = services()
    try:
        storage = workspace_storage(org, workspace_id)
        if action == "restore":
            storage.stat(file_name)
    except ObjectNotFound as e:
        raise Missing(f"no backup {file_name} in workspace {workspace_id}") from e
    except StorageError as e:
        raise annotated(e, f"workspace {workspace_id}") from e
    op = svc.store.operations.create(org, principal().user_id, action, workspace_id, file_name)
    try:
        svc.celery.send_task(TASK, args=[op["_id"]], queue=MAINTENANCE_QUEUE)
    except Exception as e:  # the broker is down: say so now rather than leave it Pending
        svc.store.operations.finish(op["_id"], OperationState.ERROR, f"not queued: {e}", {})
        raise ServiceUnavailable(f"{action} could not be queued: the broker is unreachable") from e
    return public(op)


def _latest(action: str, org: str, workspace_id: str) -> dict[str, Any]:
    return public(services().store.operations.latest(org, workspace_id, action))


@blp.route("/<id:workspace_id>:backup")
class WorkspaceBackup(MethodView):
    @admin_required
    @blp.arguments(BackupRequestSchema)
    @blp.response(202, OperationSchema)
    def post(self, body: dict[str, Any], org_name: str, workspace_id: str) -> dict[str, Any]:
        """Back up the org's state to the workspace's bucket (admins only)

        A compressed dump, streamed to ``backup_file_name``; credentials stay
        encrypted in it. Poll ``GET`` on this path for the outcome.
        """
        return _start("backup", org_name, workspace_id, body["backup_file_name"])

    @admin_required
    @blp.response(200, OperationSchema)
    def get(self, org_name: str, workspace_id: str) -> dict[str, Any]:
        """The latest backup through this workspace: status and progress"""
        return _latest("backup", org_name, workspace_id)


@blp.route("/<id:workspace_id>:restore")
class WorkspaceRestore(MethodView):
    @admin_required
    @blp.arguments(BackupRequestSchema)
    @blp.response(202, OperationSchema)
    def post(self, body: dict[str, Any], org_name: str, workspace_id: str) -> dict[str, Any]:
        """Replace the org's state with a backup from the workspace's bucket (admins only)

        The whole file is checked first (org, encryption key, completeness);
        a bad file changes nothing. Poll ``GET`` on this path for the outcome.
        """
        return _start("restore", org_name, workspace_id, body["backup_file_name"])

    @admin_required
    @blp.response(200, OperationSchema)
    def get(self, org_name: str, workspace_id: str) -> dict[str, Any]:
        """The latest restore through this workspace: status and progress"""
        return _latest("restore", org_name, workspace_id)
