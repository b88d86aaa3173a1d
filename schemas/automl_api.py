"""The AutoML endpoints' query and response shapes (TAO's ``parameter_details``)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from jobyard.schemas.catalog import PARAM_TYPES
from jobyard.schemas.common import StrictSchema
from jobyard.schemas.job import ID, NETWORK_ARCH


class CommaList(fields.Field[list[str]]):
    """``a,b`` or a repeated parameter, as TAO's ``parameters`` query takes them."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in items):
            raise ma.ValidationError("must be names separated by commas")
        names = [n.strip() for v in items for n in v.split(",") if n.strip()]
        if len(names) > 200 or any(len(n) > 200 for n in names):
            raise ma.ValidationError("at most 200 names of at most 200 characters")
        return names


class ParamDetailsArgsSchema(StrictSchema):
    base_experiment_id = fields.String(validate=ID)
    network_arch = fields.String(validate=NETWORK_ARCH)
    parameters = CommaList(metadata={"description": "only these (comma-separated)"})


class RangeSchema(ma.Schema):
    default_value = fields.Raw(allow_none=True)
    valid_min = fields.Raw(allow_none=True)
    valid_max = fields.Raw(allow_none=True)
    valid_options = fields.List(fields.Raw())
    math_cond = fields.String(allow_none=True)
    depends_on = fields.String(allow_none=True)
    parent_param = fields.String(allow_none=True)


class ParamDetailSchema(ma.Schema):
    parameter = fields.String()
    value_type = fields.String(validate=validate.OneOf(PARAM_TYPES))
    automl_enabled = fields.Boolean(metadata={"description": "searched unless removed"})
    log_scale = fields.Boolean()
    description = fields.String()
    default = fields.Nested(RangeSchema)
    custom = fields.Nested(RangeSchema, allow_none=True)


class ParamDetailsSchema(ma.Schema):
    base_experiment_id = fields.String()
    network_arch = fields.String()
    metric = fields.String(allow_none=True, metadata={"description": "ranked by default"})
    metrics = fields.List(fields.String(), metadata={"description": "the network reports"})
    algorithms = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "automl_algorithm -> the settings it takes"},
    )
    parameter_details = fields.List(fields.Nested(ParamDetailSchema))
