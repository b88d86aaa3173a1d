"""Datasets (seed 001 DATASET): where a data set lives and what it is.

A dataset in a workspace (``workspace`` + ``cloud_file_path``) is checked at
create and update time: the path must hold something, and a known format its
layout (COCO: ``annotations.json`` and ``images/``), unless ``skip_validation``.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from jobyard.api.errors import BadRequest, annotated
from jobyard.api.listing import count_route, requested_page
from jobyard.api.parser import Blueprint
from jobyard.api.services import principal, services
from jobyard.backends.storage import Storage, StorageError
from jobyard.schemas.cloud import MASK
from jobyard.schemas.common import BulkResultsSchema
from jobyard.schemas.dataset import (
    DATASET_FIELDS,
    DATASET_INTENTS,
    DatasetFilterArgsSchema,
    DatasetIdsSchema,
    DatasetListArgsSchema,
    DatasetListSchema,
    DatasetPatchSchema,
    DatasetSchema,
    DatasetWriteSchema,
    FormatArgsSchema,
    FormatsSchema,
    formats_for,
    layout_for,
)
from jobyard.store.datasets import INTERNAL, public
from jobyard.store.errors import Conflict, NotFound

blp = Blueprint(
    "datasets",
    __name__,
    url_prefix="/api/v2/orgs/<string:org_name>",
    description="Datasets: where training data lives and what format it is in",
)
WRITABLE = frozenset(DatasetPatchSchema().fields)


def workspace_storage(org: str, workspace_id: str) -> Storage:
    """The storage of a workspace of the caller's org (404 if not theirs)."""
    svc = services()
    return svc.resources.storage(svc.store.workspaces.config(org, workspace_id))


def layout_problems(storage: Storage, root: str, dataset_format: str) -> list[str]:
    """What the dataset at ``root`` lacks for its format; [] when it looks right."""

    def under(path: str) -> str:
        return f"{root}/{path}" if root else path

    required = layout_for(dataset_format)
    if not required:
        if next(iter(storage.list(root)), None) is None:
            return [f"nothing found at cloud_file_path {root or '/'}"]
        return []
    problems = []
    for item in required:
        present = (
            next(iter(storage.list(under(item.path))), None) is not None
            if item.folder
            else storage.exists(under(item.path))
        )
        if not present:
            problems.append(f"missing {item.describe()}")
    return problems


def _status(org: str, fields: dict[str, Any]) -> str:
    """Check the dataset's location and layout; the status it starts in."""
    workspace_id = fields.get("workspace")
    if workspace_id:
        try:
            services().store.workspaces.get(org, workspace_id)
        except NotFound as e:
            raise BadRequest(str(e), {"workspace": [str(e)]}) from e
    if fields.get("skip_validation"):
        return "pull_complete"
    if not workspace_id or fields.get("cloud_file_path") is None:
        return "starting"  # a URL (fetched when a job stages it) or no data yet
    root = str(fields["cloud_file_path"]).strip("/")
    try:
        problems = layout_problems(workspace_storage(org, workspace_id), root, fields["format"])
    except StorageError as e:
        raise annotated(e, f"cannot check the dataset in workspace {workspace_id}") from e
    if problems:
        message = (
            f"{root or '/'} is not a {fields['format']} dataset: {'; '.join(problems)} "
            "(send skip_validation: true to accept it anyway)"
        )
        raise BadRequest(message, {"cloud_file_path": problems})
    return "pull_complete"


def _merged(current: dict[str, Any], body: dict[str, Any], partial: bool) -> dict[str, Any]:
    """The whole dataset after PUT/PATCH, validated as a create would be."""
    kept = {k: v for k, v in current.items() if k in WRITABLE and k not in INTERNAL}
    if current.get("secrets_enc"):
        kept["client_secret"] = MASK
    merged = {**kept, **body} if partial else {**body}
    if not partial and current.get("secrets_enc") and "client_secret" not in body:
        merged["client_secret"] = None
    merged = {k: v for k, v in merged.items() if v is not None or k in body}
    try:
        loaded: dict[str, Any] = DatasetWriteSchema().load(merged)
    except ma.ValidationError as e:
        raise BadRequest("invalid dataset", e.normalized_messages()) from e
    loaded.pop("force_create", None)
    return loaded


count_route(
    blp,
    "/datasets/count",
    DatasetFilterArgsSchema,
    DATASET_FIELDS,
    "datasets",
    lambda org, page, _: services().store.datasets.count(org, page),
)


@blp.route("/datasets")
class DatasetCollection(MethodView):
    @blp.arguments(DatasetListArgsSchema, location="query")
    @blp.response(200, DatasetListSchema)
    def get(self, args: dict[str, Any], org_name: str) -> dict[str, Any]:
        """List datasets (filter by name, type, format; sort; page)"""
        page = requested_page(args, DATASET_FIELDS)
        docs, info = services().store.datasets.list_page(org_name, page)
        return {"datasets": [public(d) for d in docs], "pagination_info": info}

    @blp.arguments(DatasetWriteSchema)
    @blp.response(201, DatasetSchema)
    def post(self, body: dict[str, Any], org_name: str) -> dict[str, Any]:
        """Create a dataset

        ``type`` and ``format`` are required; data is given by ``workspace`` +
        ``cloud_file_path`` (checked now) or by ``url``.
        """
        force = body.pop("force_create", False)
        status = _status(org_name, body)
        repo = services().store.datasets
        return public(repo.create(org_name, principal().user_id, body, status, force))

    @blp.arguments(DatasetIdsSchema)
    @blp.response(200, BulkResultsSchema)
    def delete(self, body: dict[str, Any], org_name: str) -> dict[str, Any]:
        """Delete several datasets; reports the outcome of each"""
        repo = services().store.datasets
        results = []
        for dataset_id in body["dataset_ids"]:
            try:
                repo.delete(org_name, dataset_id)
                results.append({"id": dataset_id, "status": "deleted"})
            except NotFound as e:
                results.append({"id": dataset_id, "status": "not_found", "error_desc": str(e)})
            except Conflict as e:
                results.append({"id": dataset_id, "status": "refused", "error_desc": str(e)})
        return {"results": results}


@blp.route("/datasets:get_formats")
class DatasetFormats(MethodView):
    @blp.arguments(FormatArgsSchema, location="query")
    @blp.response(200, FormatsSchema)
    def get(self, args: dict[str, Any], org_name: str) -> dict[str, Any]:
        """Formats of a dataset type (all formats without one), and the dataset intents"""
        return {
            "dataset_formats": formats_for(args.get("dataset_type")),
            "accepted_dataset_intents": list(DATASET_INTENTS),
        }


@blp.route("/datasets/<id:dataset_id>")
class DatasetItem(MethodView):
    @blp.response(200, DatasetSchema)
    def get(self, org_name: str, dataset_id: str) -> dict[str, Any]:
        """Get a dataset, with the active jobs using it"""
        repo = services().store.datasets
        doc = repo.get(org_name, dataset_id)
        return public(doc, repo.users(org_name, dataset_id))

    @blp.arguments(DatasetWriteSchema)
    @blp.response(200, DatasetSchema)
    def put(self, body: dict[str, Any], org_name: str, dataset_id: str) -> dict[str, Any]:
        """Replace a dataset (a masked client_secret sent back is kept)"""
        return _update(org_name, dataset_id, body, partial=False)

    @blp.arguments(DatasetPatchSchema)
    @blp.response(200, DatasetSchema)
    def patch(self, body: dict[str, Any], org_name: str, dataset_id: str) -> dict[str, Any]:
        """Update some fields of a dataset; the result is checked as a whole"""
        return _update(org_name, dataset_id, body, partial=True)

    @blp.response(200, DatasetSchema)
    def delete(self, org_name: str, dataset_id: str) -> dict[str, Any]:
        """Delete a dataset; refused (409) while an active job uses it"""
        return public(services().store.datasets.delete(org_name, dataset_id))


def _update(org: str, dataset_id: str, body: dict[str, Any], partial: bool) -> dict[str, Any]:
    repo = services().store.datasets
    body = {k: v for k, v in body.items() if k != "force_create"}
    merged = _merged(repo.get(org, dataset_id), body, partial)
    status = _status(org, merged)
    return public(repo.replace(org, dataset_id, merged, status))
