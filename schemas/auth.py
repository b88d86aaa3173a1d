"""Login (seed 000 "User Authentication", seed 001 AUTHENTICATION)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from jobyard.schemas.common import StrictSchema


class LoginSchema(StrictSchema):
    ngc_key = fields.String(required=True, validate=validate.Length(1, 1000))
    ngc_org_name = fields.String(required=True, validate=validate.Length(1, 1000))
    enable_telemetry = fields.Boolean(allow_none=True)


class LoginResponseSchema(ma.Schema):
    user_id = fields.String()
    token = fields.String()
    user_name = fields.String()
    user_email = fields.String()
