"""Workload templates over REST (seed 003, under the org): any member keeps the org's
templates; admins also keep global ones, which every org lists and none but the creating
org's admins may change. ``POST /jobs`` with ``template_id`` starts a job from one.

Whether a template is ``runnable`` is decided the one way a job is: its spec, over the base
experiment's defaults, goes through ``POST /jobs``' schema and checks without being stored.
So a template that names a workspace since deleted, or a base experiment since removed,
says so the next time it is read, and submitting it gives those reasons as a 400."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from jobyard.api.errors import ApiError, BadRequest, Forbidden
from jobyard.api.jobspec import validated_job
from jobyard.api.listing import count_route, requested_page
from jobyard.api.parser import Blueprint
from jobyard.api.services import Services, principal, services
from jobyard.schemas.catalog import NoWorkload
from jobyard.schemas.job import JobCreateSchema
from jobyard.schemas.workload_template import (
    KINDS,
    MULTI_NODE,
    TEMPLATE_FIELDS,
    TemplateFilterArgsSchema,
    TemplateGetArgsSchema,
    TemplateListArgsSchema,
    TemplateListSchema,
    TemplatePatchSchema,
    TemplateViewSchema,
    TemplateWriteSchema,
    cleared,
    deep_merge,
    job_body,
    spec_schema,
)
from jobyard.store.errors import NotFound, StoreError
from jobyard.store.templates import GLOBAL_OWNER, body_of

blp = Blueprint(
    "workload_templates",
    __name__,
    url_prefix="/api/v2/orgs/<string:org_name>/workload-templates",
    description="Workload templates: a job request saved under a name (seed 003)",
)
KIND = "<any(trainings, distributed):kind>"
# template ids are UUIDs: a 36-character segment never takes a kind's place in the path
TEMPLATE_ID = "<string(length=36):template_id>"
DEFAULT_LIMIT = 50  # seed 003's default page


def _messages(errors: Any, prefix: str = "") -> list[str]:
    """Marshmallow's nested messages as ``field: message`` lines."""
    if isinstance(errors, Mapping):
        return [m for k, v in errors.items() for m in _messages(v, f"{prefix}{k}.")]
    if isinstance(errors, list) and all(isinstance(e, str) for e in errors):
        return [f"{prefix.rstrip('.')}: {e}" if prefix else e for e in errors]
    if isinstance(errors, list):
        return [m for e in errors for m in _messages(e, prefix)]
    return [f"{prefix.rstrip('.')}: {errors}"]


def combined(svc: Services, org: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec as a job sees it: its ``specs`` a patch over the base experiment's default
    spec for its action (when the template names an entry that offers it)."""
    out = copy.deepcopy(dict(spec))
    if not out.get("action"):
        return out
    try:
        entry = svc.store.catalog.for_job({**out, "org": org})
    except NoWorkload:
        return out
    if out["action"] in entry.actions:
        out["specs"] = deep_merge(entry.default_spec(out["action"]), out.get("specs") or {})
    return out


def problems(svc: Services, org: str, request: Mapping[str, Any]) -> list[str]:
    """Why ``POST /jobs`` would refuse this request now (nothing is stored)."""
    try:
        loaded = JobCreateSchema().load(copy.deepcopy(dict(request)))
    except ma.ValidationError as e:
        return _messages(e.normalized_messages())
    loaded.pop("template_id", None)
    try:
        validated_job(svc, org, loaded)
    except ApiError as e:
        return _messages(e.errors) if e.errors else [e.message]
    except StoreError as e:
        return [str(e)]
    return []


def view(doc: Mapping[str, Any], org: str) -> dict[str, Any]:
    """A template as the caller's org sees it: runnable there or not, and why."""
    svc = services()
    body = body_of(doc)
    spec = combined(svc, org, body["spec"])
    reasons = problems(svc, org, spec)
    if doc["workload_type"] == "distributed":
        reasons.insert(0, MULTI_NODE)
    out: dict[str, Any] = {
        "meta": {
            "id": doc["_id"],
            "name": doc["name"],
            "description": doc.get("description", ""),
            "scope": doc["scope"],
            "workloadType": doc["workload_type"],
            "version": doc["version"],
            "createdBy": doc.get("created_by"),
            "createdAt": doc.get("created_on"),
            "updatedBy": doc.get("updated_by"),
            "updatedAt": doc.get("last_modified"),
        },
        "spec": body["spec"],
        "runnable": {"value": not reasons, "reasons": reasons},
        "combinedSpec": spec,
    }
    if doc["workload_type"] == "distributed":
        out["master"] = body["master"]
        out["masterSpecSameAsWorker"] = body["masterSpecSameAsWorker"]
    return out


def job_request(org: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /jobs``' body with ``template_id``: the template's spec (over the base
    experiment's defaults) with the request's other fields on top, loaded by the job
    schema; a template that cannot run is a 400 with its reasons."""
    svc = services()
    template_id = raw["template_id"]
    try:
        doc = svc.store.templates.get(org, template_id)
    except NotFound as e:
        raise BadRequest(str(e), {"template_id": [str(e)]}) from e
    overrides = {k: v for k, v in raw.items() if k != "template_id"}
    request = job_body(combined(svc, org, body_of(doc)["spec"]), overrides)
    reasons = [MULTI_NODE] if doc["workload_type"] == "distributed" else []
    reasons += problems(svc, org, request)
    if reasons:
        message = f"template {doc['name']} ({template_id}) is not runnable: " + "; ".join(reasons)
        raise BadRequest(message, {"template_id": reasons})
    loaded: dict[str, Any] = JobCreateSchema().load(request)
    loaded["template_id"] = template_id
    loaded["template_version"] = doc["version"]
    return loaded


def _writable(org: str, doc: Mapping[str, Any]) -> None:
    who = principal()
    if doc["owner"] == GLOBAL_OWNER and not (who.is_admin and doc["org"] == org):
        raise Forbidden(
            f"template {doc['_id']} is global: only admins of the org that created it change it"
        )


def _checked_body(body: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The spec (and master section) as job request fields, or a 400 naming the field."""
    out = dict(body)
    for section in ("spec", "master"):
        if out.get(section) is None:
            continue
        try:
            spec_schema().load(out[section])
        except ma.ValidationError as e:
            raise BadRequest(
                f"invalid template {section}: " + "; ".join(_messages(e.normalized_messages())),
                {section: e.normalized_messages()},
            ) from e
    if kind != "distributed" and (out.get("master") or "masterSpecSameAsWorker" in out):
        raise BadRequest(
            "master and masterSpecSameAsWorker belong to distributed templates",
            {"master": ["only for distributed templates"]},
        )
    return out


def _list(org: str, args: dict[str, Any], kind: str | None) -> dict[str, Any]:
    page = requested_page(args, TEMPLATE_FIELDS, DEFAULT_LIMIT)
    docs, info = services().store.templates.list_page(org, page, kind)
    following = page.skip + page.size
    return {
        "entries": [view(d, org) for d in docs],
        "pagination": {
            "total": info["total_records"],
            "offset": page.skip,
            "limit": page.size,
            "next": following if following < info["total_records"] else None,
        },
    }


@blp.route("")
class AllTemplates(MethodView):
    @blp.arguments(TemplateListArgsSchema, location="query")
    @blp.response(200, TemplateListSchema)
    def get(self, args: dict[str, Any], org_name: str) -> dict[str, Any]:
        """List templates of every kind: the org's and the global ones"""
        return _list(org_name, args, None)


count_route(
    blp,
    "/count",
    TemplateFilterArgsSchema,
    TEMPLATE_FIELDS,
    "templates",
    lambda org, page, _: services().store.templates.count(org, page),
)


@blp.route(f"/{TEMPLATE_ID}")
class AnyTemplate(MethodView):
    @blp.arguments(TemplateGetArgsSchema, location="query")
    @blp.response(200, TemplateViewSchema)
    def get(self, args: dict[str, Any], org_name: str, template_id: str) -> dict[str, Any]:
        """Get a template of any kind (``?version=N``: as it was then)"""
        return _read(org_name, template_id, None, args.get("version"))


def _read(org: str, template_id: str, kind: str | None, version: int | None) -> dict[str, Any]:
    repo = services().store.templates
    doc = repo.get(org, template_id, kind)
    return view(repo.version(org, template_id, version) if version else doc, org)


@blp.route(f"/{KIND}")
class KindTemplates(MethodView):
    @blp.arguments(TemplateListArgsSchema, location="query")
    @blp.response(200, TemplateListSchema)
    def get(self, args: dict[str, Any], org_name: str, kind: str) -> dict[str, Any]:
        """List templates of one kind"""
        return _list(org_name, args, KINDS[kind])

    @blp.arguments(TemplateWriteSchema)
    @blp.response(202, TemplateViewSchema)
    def post(self, body: dict[str, Any], org_name: str, kind: str) -> dict[str, Any]:
        """Create a template (``meta.scope: global``: admins only)"""
        who = principal()
        if body["meta"]["scope"] == "global" and not who.is_admin:
            raise Forbidden("only admins create global templates")
        checked = _checked_body(body, kind)
        repo = services().store.templates
        return view(repo.create(org_name, who.name, KINDS[kind], body["meta"], checked), org_name)


@blp.route(f"/{KIND}/{TEMPLATE_ID}")
class KindTemplate(MethodView):
    @blp.arguments(TemplateGetArgsSchema, location="query")
    @blp.response(200, TemplateViewSchema)
    def get(
        self, args: dict[str, Any], org_name: str, kind: str, template_id: str
    ) -> dict[str, Any]:
        """Get a template (``?version=N``: as it was then)"""
        return _read(org_name, template_id, KINDS[kind], args.get("version"))

    @blp.arguments(TemplateWriteSchema)
    @blp.response(200, TemplateViewSchema)
    def put(
        self, body: dict[str, Any], org_name: str, kind: str, template_id: str
    ) -> dict[str, Any]:
        """Replace a template's meta and spec; its version goes up by one"""
        repo = services().store.templates
        current = repo.get(org_name, template_id, KINDS[kind])
        _writable(org_name, current)
        if body["meta"]["scope"] != current["scope"]:
            raise BadRequest("a template's scope does not change", {"meta": ["scope"]})
        checked = _checked_body(body, kind)
        return view(repo.update(current, body["meta"], checked, principal().name), org_name)

    @blp.arguments(TemplatePatchSchema)
    @blp.response(200, TemplateViewSchema)
    def patch(
        self, body: dict[str, Any], org_name: str, kind: str, template_id: str
    ) -> dict[str, Any]:
        """Change some fields (``spec`` merges key by key; ``fieldsToClear`` removes
        dotted paths such as ``spec.timeout_minutes``); its version goes up by one"""
        repo = services().store.templates
        current = repo.get(org_name, template_id, KINDS[kind])
        _writable(org_name, current)
        stored = {
            "meta": {"name": current["name"], "description": current.get("description", "")},
            **body_of(current),
        }
        merged = deep_merge(stored, {k: v for k, v in body.items() if k != "fieldsToClear"})
        try:
            merged = cleared(merged, body.get("fieldsToClear") or [])
        except ValueError as e:
            raise BadRequest(str(e), {"fieldsToClear": [str(e)]}) from e
        merged = {k: v for k, v in merged.items() if v is not None}
        checked = _checked_body(merged, kind)
        return view(repo.update(current, merged["meta"], checked, principal().name), org_name)

    @blp.response(204)
    def delete(self, org_name: str, kind: str, template_id: str) -> None:
        """Delete a template and its older versions (jobs made from it are kept)"""
        repo = services().store.templates
        current = repo.get(org_name, template_id, KINDS[kind])
        _writable(org_name, current)
        repo.delete(current)
