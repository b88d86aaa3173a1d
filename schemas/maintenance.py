"""Backup and restore requests and the operation they start (seed 000,
"Workspace Backup and Restore")."""

from __future__ import annotations

import enum

import marshmallow as ma
from marshmallow import fields, validate

from jobyard.schemas.common import StrictSchema, Timestamp


class OperationState(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    DONE = "Done"
    ERROR = "Error"


class Action(enum.StrEnum):
    BACKUP = "backup"
    RESTORE = "restore"


def _inside(value: str) -> None:
    if ".." in value.split("/") or value.startswith("/"):
        raise ma.ValidationError("must be a relative name inside the workspace (no '..')")


class BackupRequestSchema(StrictSchema):
    backup_file_name = fields.String(
        required=True,
        validate=[validate.Length(1, 255), validate.Regexp(r"^[A-Za-z0-9._/-]+$"), _inside],
        metadata={"description": "Object name in the workspace, e.g. mongodb_backup_20251110.gz"},
    )


class OperationSchema(ma.Schema):
    id = fields.String()
    action = fields.String(metadata={"description": "backup or restore"})
    status = fields.String(metadata={"description": "Pending, Running, Done or Error"})
    message = fields.String()
    workspace = fields.String()
    backup_file_name = fields.String()
    progress = fields.Dict(metadata={"description": "documents, bytes, collections ..."})
    user_id = fields.String()
    created_on = Timestamp()
    started_on = Timestamp()
    finished_on = Timestamp()
    last_modified = Timestamp()
