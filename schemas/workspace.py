"""Workspace request and response schemas (seed 001 WORKSPACE)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from jobyard.schemas.cloud import CLOUD_TYPES, NOT_SUPPORTED, validate_details
from jobyard.schemas.common import (
    ListArgsSchema,
    PaginationInfoSchema,
    QueryArgsSchema,
    StrictSchema,
    Timestamp,
)
from jobyard.schemas.listquery import Field, Fields, FieldType

CLOUD_TYPE_CHOICES = sorted(CLOUD_TYPES)


@dataclass(frozen=True)
class WorkspaceConfig:
    """A workspace as backends and storage adapters see it: decrypted details, never shown.

    ``version`` changes whenever the workspace does, so a backend built from it (an SSH
    connection, an API client) is rebuilt after its credentials or hosts changed.
    """

    id: str
    org: str
    cloud_type: str
    version: float
    details: Mapping[str, Any] = field(default_factory=dict)


def _cloud_type(value: str) -> None:
    if value in NOT_SUPPORTED:
        raise ma.ValidationError(
            f"cloud_type {value} is not supported yet; use one of {', '.join(CLOUD_TYPE_CHOICES)}"
        )
    if value not in CLOUD_TYPES:
        raise ma.ValidationError(f"must be one of {', '.join(CLOUD_TYPE_CHOICES)}")


class WorkspaceWriteSchema(StrictSchema):
    """Body of POST and PUT: everything required, details checked per cloud type."""

    name = fields.String(required=True, validate=validate.Length(1, 500))
    shared = fields.Boolean(load_default=False)
    version = fields.String(validate=validate.Length(max=10))
    cloud_type = fields.String(required=True, validate=_cloud_type)
    cloud_specific_details = fields.Dict(keys=fields.String(), load_default=dict)
    force_create = fields.Boolean(
        load_default=False, metadata={"description": "create even if an identical one exists"}
    )

    @ma.validates_schema(skip_on_field_errors=True)
    def _details(self, data: dict[str, Any], **_: Any) -> None:
        errors = validate_details(data["cloud_type"], data.get("cloud_specific_details") or {})
        if errors:
            raise ma.ValidationError({"cloud_specific_details": errors})


class WorkspacePatchSchema(StrictSchema):
    """Body of PATCH: any subset; details are merged, then checked as a whole."""

    name = fields.String(validate=validate.Length(1, 500))
    shared = fields.Boolean()
    version = fields.String(validate=validate.Length(max=10))
    cloud_type = fields.String(validate=_cloud_type)
    cloud_specific_details = fields.Dict(keys=fields.String())


class WorkspaceSchema(ma.Schema):
    id = fields.String()
    user_id = fields.String()
    created_on = Timestamp()
    last_modified = Timestamp()
    name = fields.String()
    shared = fields.Boolean()
    version = fields.String()
    cloud_type = fields.String()
    cloud_specific_details = fields.Dict(
        metadata={"description": "Credentials are always shown as ********"}
    )


class WorkspaceFilterArgsSchema(QueryArgsSchema):
    cloud_type = fields.String(validate=validate.OneOf(CLOUD_TYPE_CHOICES))


class WorkspaceListArgsSchema(WorkspaceFilterArgsSchema, ListArgsSchema):
    pass


WORKSPACE_FIELDS = Fields(
    (
        Field("id", path="_id"),
        Field("name", search=True, param_op="=@"),
        Field("cloud_type", choices=tuple(CLOUD_TYPE_CHOICES), search=True, param_op="=="),
        Field("user_id"),
        Field("created_on", FieldType.DATE, aliases=("createdAt",)),
        Field("last_modified", FieldType.DATE, aliases=("updatedAt",)),
    )
)


class WorkspaceListSchema(ma.Schema):
    workspaces = fields.List(fields.Nested(WorkspaceSchema))
    pagination_info = fields.Nested(PaginationInfoSchema)


class WorkspaceIdsSchema(StrictSchema):
    workspace_ids = fields.List(
        fields.String(validate=validate.Length(1, 36)),
        required=True,
        validate=validate.Length(1, 1000),
    )
