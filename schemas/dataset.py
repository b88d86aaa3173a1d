"""Datasets: seed 001's fields and enums, the type -> formats table behind
``:get_formats``, and the layouts known formats must have (seed 000's COCO
tree: ``annotations.json`` beside ``images/``) as data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from jobyard.schemas.common import (
    ListArgsSchema,
    PaginationInfoSchema,
    QueryArgsSchema,
    StrictSchema,
    Timestamp,
)
from jobyard.schemas.listquery import Field, Fields, FieldType

DATASET_TYPES = (
    "bevfusion",
    "ocdnet",
    "image_classification",
    "visual_changenet",
    "ocrnet",
    "pose_classification",
    "stylegan_xl",
    "maxine_dataset",
    "ml_recog",
    "re_identification",
    "optical_inspection",
    "user_custom",
    "not_restricted",
    "object_detection",
    "centerpose",
    "action_recognition",
    "segmentation",
    "pointpillars",
    "vlm",
)
DATASET_FORMATS = (
    "visual_changenet_classify",
    "visual_changenet_segment",
    "coco_panoptic",
    "lprnet",
    "coco",
    "unet",
    "classification_pyt",
    "raw",
    "custom",
    "coco_raw",
    "default",
    "maxine_gaze",
    "ssl",
    "odvg",
    "kitti",
    "monai",
    "classification_tf2",
)
# seed 001's list filters name a few more (older) values; filtering by them finds nothing
FILTER_TYPES = (*DATASET_TYPES, "character_recognition")
FILTER_FORMATS = (*DATASET_FORMATS, "pascal_voc", "train", "test")
# seed 000 adds "calibration" to seed 001's three (INT8/FP8 calibration data)
DATASET_INTENTS = ("training", "evaluation", "testing", "calibration")
STATUSES = ("starting", "in_progress", "pull_complete", "invalid_pull")

_ANY = DATASET_FORMATS
FORMATS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "object_detection": ("kitti", "coco", "coco_raw", "raw", "odvg"),
    "segmentation": ("unet", "coco", "coco_panoptic", "raw"),
    "image_classification": (
        "classification_pyt",
        "classification_tf2",
        "default",
        "raw",
        "custom",
        "ssl",
    ),
    "visual_changenet": ("visual_changenet_classify", "visual_changenet_segment"),
    "ocrnet": ("lprnet", "default"),
    "ocdnet": ("default",),
    "maxine_dataset": ("maxine_gaze",),
    "user_custom": ("custom", "default", "raw"),
    "not_restricted": _ANY,
    **{
        t: ("default", "custom")
        for t in (
            "bevfusion",
            "pose_classification",
            "stylegan_xl",
            "ml_recog",
            "re_identification",
            "optical_inspection",
            "centerpose",
            "action_recognition",
            "pointpillars",
            "vlm",
        )
    },
}


def formats_for(dataset_type: str | None) -> list[str]:
    """Formats a type accepts, or every format when no type is given."""
    if dataset_type is None:
        return list(DATASET_FORMATS)
    return list(FORMATS_BY_TYPE.get(dataset_type, ()))


@dataclass(frozen=True)
class Required:
    """One entry a dataset root must hold: a file, or a folder with something in it."""

    path: str
    folder: bool = False

    def describe(self) -> str:
        return f"{self.path}/ (a non-empty folder)" if self.folder else f"{self.path} (a file)"


LAYOUTS: dict[str, tuple[Required, ...]] = {
    "coco": (Required("annotations.json"), Required("images", folder=True)),
    "coco_raw": (Required("images", folder=True),),
    "raw": (Required("images", folder=True),),
    "kitti": (Required("images", folder=True), Required("labels", folder=True)),
    "unet": (Required("images", folder=True), Required("masks", folder=True)),
    "lprnet": (Required("image", folder=True), Required("label", folder=True)),
}


def layout_for(dataset_format: str) -> tuple[Required, ...]:
    """What a dataset of this format must contain; empty when jobyard does not know."""
    return LAYOUTS.get(dataset_format, ())


def consistency_errors(data: dict[str, Any]) -> dict[str, list[str]]:
    """Cross-field rules of a whole dataset (create, PUT, or PATCH merged)."""
    errors: dict[str, list[str]] = {}
    dtype, dformat = data.get("type"), data.get("format")
    if dtype and dformat and dformat not in FORMATS_BY_TYPE.get(dtype, ()):
        allowed = ", ".join(FORMATS_BY_TYPE.get(dtype, ()))
        errors["format"] = [f"format {dformat} is not a {dtype} format (one of: {allowed})"]
    if data.get("cloud_file_path") and not data.get("workspace"):
        errors["workspace"] = ["cloud_file_path is a path inside a workspace: give workspace"]
    if data.get("cloud_file_path") and data.get("url"):
        errors["url"] = ["give either url or cloud_file_path, not both"]
    return errors


def _unique(values: list[str]) -> None:
    if len(set(values)) != len(values):
        raise ma.ValidationError("values must not repeat")


def _cloud_path(value: str) -> None:
    parts = value.replace("\\", "/").split("/")
    if ".." in parts or "\0" in value:
        raise ma.ValidationError("must be a path inside the workspace (no '..')")


_TEXT = fields.String


class DatasetPatchSchema(StrictSchema):
    """PATCH body: any subset; merged with the stored dataset, then checked whole.

    Also the field list of POST/PUT, which add what is required and the defaults.
    """

    name = _TEXT(validate=validate.Length(max=500))
    shared = fields.Boolean()
    user_id = _TEXT(validate=validate.Length(max=36), metadata={"description": "ignored"})
    description = _TEXT(validate=validate.Length(max=1000))
    docker_env_vars = fields.Dict(
        keys=_TEXT(validate=validate.Length(1, 255)),
        values=_TEXT(validate=validate.Length(max=4096)),
        validate=validate.Length(max=100),
    )
    version = _TEXT(validate=validate.Length(max=10))
    logo = fields.Url(validate=validate.Length(max=2048))
    type = _TEXT(validate=validate.OneOf(DATASET_TYPES))
    format = _TEXT(validate=validate.OneOf(DATASET_FORMATS))
    workspace = _TEXT(validate=validate.Length(1, 36), allow_none=True)
    url = fields.Url(validate=validate.Length(max=2048), schemes={"http", "https"})
    cloud_file_path = _TEXT(validate=[validate.Length(max=2048), _cloud_path], allow_none=True)
    client_url = _TEXT(validate=validate.Length(max=2048), allow_none=True)
    client_id = _TEXT(validate=validate.Length(max=2048), allow_none=True)
    client_secret = _TEXT(validate=validate.Length(max=2048), allow_none=True)
    filters = _TEXT(validate=validate.Length(max=2048), allow_none=True)
    status = _TEXT(validate=validate.OneOf(STATUSES), metadata={"description": "ignored"})
    use_for = fields.List(
        _TEXT(validate=validate.OneOf(DATASET_INTENTS)),
        validate=[validate.Length(max=len(DATASET_INTENTS)), _unique],
        allow_none=True,
    )
    base_experiment_pull_complete = _TEXT(validate=validate.OneOf(STATUSES))
    base_experiment = fields.List(
        _TEXT(validate=validate.Length(1, 36)), validate=validate.Length(max=2)
    )
    skip_validation = fields.Boolean(allow_none=True)
    authorized_party_nca_id = _TEXT(validate=validate.Length(max=2048), allow_none=True)


class DatasetWriteSchema(DatasetPatchSchema):
    """POST and PUT body: type and format required (seed 001)."""

    name = _TEXT(load_default="", validate=validate.Length(max=500))
    shared = fields.Boolean(load_default=False)
    description = _TEXT(load_default="", validate=validate.Length(max=1000))
    version = _TEXT(load_default="1.0.0", validate=validate.Length(max=10))
    type = _TEXT(required=True, validate=validate.OneOf(DATASET_TYPES))
    format = _TEXT(required=True, validate=validate.OneOf(DATASET_FORMATS))
    skip_validation = fields.Boolean(load_default=False, allow_none=True)
    force_create = fields.Boolean(
        load_default=False, metadata={"description": "create even if an identical one exists"}
    )

    @ma.validates_schema(skip_on_field_errors=True)
    def _consistent(self, data: dict[str, Any], **_: Any) -> None:
        errors = consistency_errors(data)
        if errors:
            raise ma.ValidationError(errors)


class DatasetSchema(ma.Schema):
    id = fields.String()
    user_id = fields.String()
    created_on = Timestamp()
    last_modified = Timestamp()
    name = fields.String()
    shared = fields.Boolean()
    description = fields.String()
    docker_env_vars = fields.Dict()
    version = fields.String()
    logo = fields.String()
    type = fields.String()
    format = fields.String()
    workspace = fields.String(allow_none=True)
    url = fields.String()
    cloud_file_path = fields.String(allow_none=True)
    actions = fields.List(fields.String())
    jobs = fields.Dict(metadata={"description": "Active jobs using the dataset, by id"})
    client_url = fields.String(allow_none=True)
    client_id = fields.String(allow_none=True)
    client_secret = fields.String(allow_none=True, metadata={"description": "Shown masked"})
    filters = fields.String(allow_none=True)
    status = fields.String()
    use_for = fields.List(fields.String(), allow_none=True)
    base_experiment_pull_complete = fields.String()
    base_experiment = fields.List(fields.String())
    skip_validation = fields.Boolean(allow_none=True)
    authorized_party_nca_id = fields.String(allow_none=True)
    source_job = fields.Dict(
        allow_none=True,
        metadata={"description": "The dataset job whose results this version is (job_id, path)"},
    )
    derived_from = fields.String(
        allow_none=True, metadata={"description": "The dataset this version was made from"}
    )


class DatasetFilterArgsSchema(QueryArgsSchema):
    format = fields.String(validate=validate.OneOf(FILTER_FORMATS))
    type = fields.String(validate=validate.OneOf(FILTER_TYPES))


class DatasetListArgsSchema(DatasetFilterArgsSchema, ListArgsSchema):
    pass


DATASET_FIELDS = Fields(
    (
        Field("id", path="_id"),
        Field("name", search=True, param_op="=@"),
        Field("description", search=True, sort=False),
        Field("type", search=True, param_op="=="),
        Field("format", search=True, param_op="=="),
        Field("status"),
        Field("version"),
        Field("workspace"),
        Field("user_id"),
        Field("source_job", path="source_job.job_id"),
        Field("created_on", FieldType.DATE, aliases=("createdAt",)),
        Field("last_modified", FieldType.DATE, aliases=("updatedAt",)),
    )
)


class DatasetListSchema(ma.Schema):
    datasets = fields.List(fields.Nested(DatasetSchema))
    pagination_info = fields.Nested(PaginationInfoSchema)


class DatasetIdsSchema(StrictSchema):
    dataset_ids = fields.List(
        fields.String(validate=validate.Length(1, 36)),
        required=True,
        validate=validate.Length(1, 1000),
    )


class FormatArgsSchema(StrictSchema):
    dataset_type = fields.String(validate=validate.OneOf(DATASET_TYPES))


class FormatsSchema(ma.Schema):
    dataset_formats = fields.List(fields.String())
    accepted_dataset_intents = fields.List(fields.String())


# Job fields that may name datasets: TAO's id fields and the v2 URI fields, whose
# values may be dataset ids instead of URIs.
JOB_DATASET_FIELDS = (
    "train_datasets",
    "eval_dataset",
    "inference_dataset",
    "calibration_dataset",
    "train_dataset_uris",
    "eval_dataset_uri",
    "inference_dataset_uri",
    "calibration_dataset_uri",
)


def referenced_ids(job: dict[str, Any]) -> set[str]:
    """Every value of a job's dataset fields that could be a dataset id (no scheme, no path)."""
    found: set[str] = set()
    for key in JOB_DATASET_FIELDS:
        value = job.get(key)
        values = value if isinstance(value, list) else [value]
        found.update(v for v in values if isinstance(v, str) and v and "/" not in v)
    return found
