"""Published models: the org's model registry, as request shapes and pure functions.

Publishing a Done job (seed 000's ``jobs/{id}:publish_model``) copies its chosen
checkpoint and specs to workspace storage and adds a catalog entry of the org's own: the
source job's entry (same network, actions, commands) whose train action starts from those
weights. A published model's id is that entry's id, so ``jobs:list_base_experiments``
lists it and ``base_experiment_ids: [<id>]`` trains from it, as TAO's users expect of a
model in their org's registry.
"""

from __future__ import annotations

import copy
import posixpath
import re
from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from jobyard.schemas.catalog import NAME, experiment_id
from jobyard.schemas.common import ListArgsSchema, PaginationInfoSchema, StrictSchema, Timestamp
from jobyard.schemas.job import ID
from jobyard.schemas.listquery import Field, Fields, FieldType

PREFIX = "models"  # <workspace>/models/<org>/<name>/<version>/
SPECS_FILE = "specs.json"
CARD_FILE = "model.json"  # what the folder holds, readable without jobyard
# actions whose result is a model a new job can start from (an AutoML search is a train)
PUBLISHABLE = ("train", "retrain", "export")
CHECKPOINT_METHODS = ("best_model", "latest_model", "from_epoch_number")
_SLUG_OUT = re.compile(r"[^a-z0-9._-]+")
_TEXT = validate.Length(max=500)  # seed 001: "<= 500 characters"


class _ModelMetaSchema(StrictSchema):
    """Seed 001's body of both calls: ``team`` (seed 000) or ``team_name`` (seed 001)."""

    display_name = fields.String(allow_none=True, validate=_TEXT)
    description = fields.String(allow_none=True, validate=_TEXT)
    team = fields.String(allow_none=True, validate=_TEXT)
    team_name = fields.String(allow_none=True, validate=_TEXT)

    @ma.post_load
    def _team(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        team, alias = data.pop("team", None), data.pop("team_name", None)
        if team and alias and team != alias:
            raise ma.ValidationError("disagrees with team", "team_name")
        data["team"] = team or alias or ""
        return data


class PublishSchema(_ModelMetaSchema):
    """What to publish and where to copy it."""

    checkpoint_choose_method = fields.String(
        load_default="best_model", validate=validate.OneOf(CHECKPOINT_METHODS)
    )
    checkpoint_epoch_number = fields.Raw(
        metadata={"description": "with from_epoch_number: an integer, or TAO's object"}
    )
    workspace = fields.String(
        validate=ID, metadata={"description": "where the files go (default: the job's)"}
    )
    force_create = fields.Boolean(
        load_default=False,
        metadata={"description": "publish a new version even if this checkpoint is published"},
    )


class RemoveSchema(_ModelMetaSchema):
    version = fields.Integer(
        validate=validate.Range(1, 2**31 - 1),
        metadata={"description": "remove only this version (default: every one of the job's)"},
    )


class ModelFileSchema(ma.Schema):
    name = fields.String()
    size = fields.Integer()
    sha256 = fields.String()


class ModelSchema(ma.Schema):
    id = fields.String(metadata={"description": "also its base experiment id"})
    name = fields.String()
    display_name = fields.String()
    version = fields.Integer()
    description = fields.String()
    team = fields.String()
    network_arch = fields.String()
    state = fields.String(metadata={"description": "publishing, published or removing"})
    source_job_id = fields.String()
    source_action = fields.String()
    checkpoint = fields.String(metadata={"description": "the file, in the source job's results"})
    metrics = fields.Dict(keys=fields.String())
    size = fields.Integer(metadata={"description": "bytes of the checkpoint"})
    sha256 = fields.String(metadata={"description": "of the checkpoint"})
    files = fields.List(fields.Nested(ModelFileSchema))
    workspace = fields.String()
    location = fields.String(metadata={"description": "the folder in the workspace"})
    created_by = fields.String()
    created_on = Timestamp()


class ModelListSchema(ma.Schema):
    models = fields.List(fields.Nested(ModelSchema))
    pagination_info = fields.Nested(PaginationInfoSchema)


class PublishedSchema(ModelSchema):
    message = fields.String()


class RemovedSchema(ma.Schema):
    message = fields.String()
    removed = fields.List(fields.Nested(ModelSchema))


class ModelListArgsSchema(ListArgsSchema):
    network_arch = fields.String(validate=validate.Length(max=64))
    team = fields.String(validate=_TEXT)


MODEL_FIELDS = Fields(
    (
        Field("id", path="_id"),
        Field("name", path="model_name", search=True, param_op="=@"),
        Field("network_arch", search=True, param_op="=="),
        Field("team", param_op="=="),
        Field("version", FieldType.NUMBER),
        Field("created_on", FieldType.DATE, aliases=("createdAt",)),
    )
)


# --- pure functions ----------------------------------------------------------------------


def slug(text: str) -> str:
    """A model's name as folders and catalog entries can hold it."""
    cleaned = _SLUG_OUT.sub("-", text.strip().lower()).strip("-._")
    return cleaned[:100].rstrip("-._") or "model"


def location(org: str, name: str, version: int) -> str:
    return posixpath.join(PREFIX, org, name, str(version))


def model_id(org: str, name: str, version: int) -> str:
    """Stable: a publish retried after a crash finds the version it had reserved."""
    return experiment_id(ngc_path(org, name, version), org)


def ngc_path(org: str, name: str, version: int) -> str:
    return f"{org}/{name}:{version}"


def entry_data(
    source: Mapping[str, Any],
    *,
    org: str,
    name: str,
    version: int,
    display_name: str,
    description: str,
    specs: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The catalog entry of a published model: the source job's entry (its data as the
    catalog stores it) under the model's name, its train defaults the published specs."""
    data = copy.deepcopy(dict(source))
    data["name"] = _entry_name(name, version)
    data["ngc_path"] = ngc_path(org, name, version)
    data["description"] = description or f"{display_name} (published model, version {version})"
    train = (data.get("actions") or {}).get("train")
    if specs is not None and isinstance(train, dict):
        train["default_spec"] = copy.deepcopy(dict(specs))
    return data


def _entry_name(name: str, version: int) -> str:
    text = f"{name}-v{version}"
    if not NAME.fullmatch(text):  # a slug always fits; guard the catalog's own rule anyway
        raise ValueError(f"{text!r} is not a catalog entry name")
    return text


def metrics(job: Mapping[str, Any]) -> dict[str, Any]:
    """The source job's final KPI values, by metric."""
    found: dict[str, Any] = {}
    for item in (job.get("job_details") or {}).get("kpi") or []:
        if isinstance(item, Mapping) and item.get("metric"):
            found[str(item["metric"])] = item.get("value")
    return found


def view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The wire view of a registry entry (a catalog document with a ``model``)."""
    model = dict(doc.get("model") or {})
    return {
        **model,
        "id": doc["_id"],
        "network_arch": doc.get("network_arch"),
        "created_on": doc.get("created_on"),
    }
