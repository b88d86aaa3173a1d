"""Workload templates (seed 003): a saved job request under a name, so a team submits the
same shape again with only what changes.

A template's ``spec`` holds job request fields (``POST /jobs``'s), any subset of them, and
its ``specs`` may be a patch over the base experiment's default spec. Everything here is
pure: the body schemas, the field table lists query, and the merges a template goes
through (PATCH, ``fieldsToClear``, a job's overrides)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from jobyard.schemas.common import (
    ListArgsSchema,
    QueryArgsSchema,
    StrictSchema,
    Timestamp,
)
from jobyard.schemas.job import JobCreateSchema
from jobyard.schemas.listquery import Field, Fields, FieldType

# path segment -> the workloadType seed 003 shows for it
KINDS = {"trainings": "training", "distributed": "distributed"}
SCOPES = ("org", "global")
NAME = validate.And(validate.Length(1, 255), validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$"))
MULTI_NODE = "multi-node jobs are not supported by this deployment"
# fields of a job request a template cannot hold: they are about one submission
NOT_IN_TEMPLATE = ("force_create", "template_id")
SPEC_FIELDS = tuple(n for n in JobCreateSchema().fields if n not in NOT_IN_TEMPLATE)


def spec_schema() -> ma.Schema:
    """A template's spec: job request fields, none required and none defaulted, so what is
    stored is what the author wrote."""
    return JobCreateSchema(partial=True, exclude=NOT_IN_TEMPLATE)


class MetaSchema(StrictSchema):
    name = fields.String(required=True, validate=NAME)
    description = fields.String(validate=validate.Length(max=1000))
    scope = fields.String(
        load_default="org",
        validate=validate.OneOf(SCOPES),
        metadata={"description": "org: this org's; global: every org lists it (admins only)"},
    )


class MetaPatchSchema(StrictSchema):
    name = fields.String(validate=NAME)
    description = fields.String(validate=validate.Length(max=1000))


class TemplateWriteSchema(StrictSchema):
    """POST and PUT: ``meta`` and ``spec`` (distributed ones also their master section)."""

    meta = fields.Nested(MetaSchema, required=True)
    spec = fields.Dict(keys=fields.String(), load_default=dict, allow_none=False)
    masterSpecSameAsWorker = fields.Boolean()  # noqa: N815 - seed 003's name
    master = fields.Dict(keys=fields.String(), allow_none=True)


class TemplatePatchSchema(StrictSchema):
    meta = fields.Nested(MetaPatchSchema)
    spec = fields.Dict(keys=fields.String(), allow_none=True)
    masterSpecSameAsWorker = fields.Boolean()  # noqa: N815 - seed 003's name
    master = fields.Dict(keys=fields.String(), allow_none=True)
    fieldsToClear = fields.List(  # noqa: N815 - seed 003's name
        fields.String(validate=validate.Length(1, 200)), validate=validate.Length(max=100)
    )


class TemplateMetaViewSchema(ma.Schema):
    id = fields.String()
    name = fields.String()
    description = fields.String()
    scope = fields.String()
    workloadType = fields.String()  # noqa: N815
    version = fields.Integer()
    createdBy = fields.String()  # noqa: N815
    createdAt = Timestamp()  # noqa: N815
    updatedBy = fields.String()  # noqa: N815
    updatedAt = Timestamp()  # noqa: N815


class RunnableSchema(ma.Schema):
    value = fields.Boolean(metadata={"description": "A job can be created from it as it is"})
    reasons = fields.List(fields.String(), metadata={"description": "Why not, when not"})


class TemplateViewSchema(ma.Schema):
    meta = fields.Nested(TemplateMetaViewSchema)
    spec = fields.Dict()
    masterSpecSameAsWorker = fields.Boolean()  # noqa: N815
    master = fields.Dict(allow_none=True)
    runnable = fields.Nested(RunnableSchema)
    combinedSpec = fields.Dict(  # noqa: N815
        metadata={"description": "The spec over the base experiment's defaults, as a job sees it"}
    )


class TemplatePaginationSchema(ma.Schema):
    total = fields.Integer()
    offset = fields.Integer()
    limit = fields.Integer()
    next = fields.Integer(allow_none=True, metadata={"description": "offset of the next page"})


class TemplateListSchema(ma.Schema):
    entries = fields.List(fields.Nested(TemplateViewSchema))
    pagination = fields.Nested(TemplatePaginationSchema)


class TemplateFilterArgsSchema(QueryArgsSchema):
    pass


class TemplateListArgsSchema(ListArgsSchema):
    pass


class TemplateGetArgsSchema(StrictSchema):
    version = fields.Integer(validate=validate.Range(1, 2**31 - 1))


TEMPLATE_FIELDS = Fields(
    (
        Field("id", path="_id"),
        Field("name", search=True, param_op="=@"),
        Field("description", search=True, sort=False),
        Field("workloadType", path="workload_type", choices=tuple(KINDS.values())),
        Field("scope", aliases=("scopeType",), choices=SCOPES),
        Field("network_arch", search=True),
        Field("action"),
        Field("version", FieldType.NUMBER),
        Field("createdBy", path="created_by"),
        Field("updatedBy", path="updated_by"),
        Field("createdAt", FieldType.DATE, path="created_on", aliases=("created_on",)),
        Field("updatedAt", FieldType.DATE, path="last_modified", aliases=("last_modified",)),
    )
)


def deep_merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``patch`` over ``base``: objects merge key by key, anything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def cleared(doc: Mapping[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """``doc`` without the dotted ``paths`` (``spec.specs.train.lr``); a path that is not
    there is already clear. ``ValueError`` for one that could never be cleared."""
    out = copy.deepcopy(dict(doc))
    for path in paths:
        parts = path.split(".")
        if parts[0] not in ("spec", "meta", "master"):
            parts = ["spec", *parts]  # a bare name is a spec field
        if parts[:2] in (["meta", "name"], ["meta", "scope"]) or len(parts) < 2:
            raise ValueError(f"{path} cannot be cleared")
        node: Any = out
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return out


def job_body(spec: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A job request from a template's spec and what the caller sends beside
    ``template_id``: top-level fields replace, ``specs`` merge key by key."""
    body = {**copy.deepcopy(dict(spec)), **copy.deepcopy(dict(overrides))}
    if isinstance(spec.get("specs"), Mapping) and isinstance(overrides.get("specs"), Mapping):
        body["specs"] = deep_merge(spec["specs"], overrides["specs"])
    return body
