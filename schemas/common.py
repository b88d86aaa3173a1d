"""Schemas shared by every resource: the error body, paging, bulk results."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

ORG_NAME = validate.And(validate.Length(1, 255), validate.Regexp(r"^[a-zA-Z0-9_-]+$"))
MAX_PAGE_SIZE = 1000
# Every integer a client sends has a range: BSON integers are 8 bytes and pymongo raises on a
# larger one instead of storing or comparing it, so an unbounded field is a 500 waiting.
MAX_SKIP = 2_147_483_647
MAX_OFFSET = 2**53  # byte offsets and sequence numbers: the largest integer JSON keeps exact
# Query values stay far below gunicorn's request-line limit (4094 bytes) so a long one is
# the app's 400 naming the field; no stored name is longer than this, so a longer filter
# could match nothing anyway.
MAX_NAME_FILTER = 500
MAX_FILTER_TEXT = 2000  # one filterBy parameter, several comma-separated terms
MAX_FILTER_PARAMS = 20
MAX_LIMIT = 500  # seed 003's limit range

# sort parameter -> (field, direction), seed 001's enum
SORTS: dict[str, tuple[str, int]] = {
    "date-descending": ("created_on", -1),
    "date-ascending": ("created_on", 1),
    "name-descending": ("name", -1),
    "name-ascending": ("name", 1),
}


class StrictSchema(ma.Schema):
    """Unknown fields are an error: a field we do not handle is never dropped."""

    class Meta:
        unknown = ma.RAISE


class ErrorSchema(ma.Schema):
    """Every 4xx/5xx body (seed 001)."""

    error_desc = fields.String(required=True, metadata={"description": "What went wrong"})
    error_code = fields.Integer(required=True, metadata={"description": "HTTP status code"})
    errors = fields.Dict(metadata={"description": "Per-field validation messages"})


class PaginationInfoSchema(ma.Schema):
    total_records = fields.Integer()
    total_pages = fields.Integer()
    page_size = fields.Integer()
    page_index = fields.Integer()


class QueryArgsSchema(StrictSchema):
    """What selects documents: seed 003's ``filterBy`` and ``search``, and TAO's ``name``
    (each collection adds its own TAO filters); ``schemas.listquery`` compiles them."""

    filter_by = fields.List(
        fields.String(validate=validate.Length(1, MAX_FILTER_TEXT)),
        data_key="filterBy",
        validate=validate.Length(max=MAX_FILTER_PARAMS),
        metadata={"description": "field op value, repeated or comma-separated (seed 003)"},
    )
    search = fields.String(validate=validate.Length(1, MAX_NAME_FILTER))
    name = fields.String(validate=validate.Length(max=MAX_NAME_FILTER))


class ListArgsSchema(QueryArgsSchema):
    """A page: TAO's ``skip``/``size``/``sort`` or seed 003's ``offset``/``limit`` and
    ``sortBy``/``sortOrder`` (one spelling of each per request)."""

    skip = fields.Integer(validate=validate.Range(0, MAX_SKIP))
    size = fields.Integer(validate=validate.Range(0, MAX_PAGE_SIZE))
    sort = fields.String(validate=validate.OneOf(list(SORTS)))
    offset = fields.Integer(validate=validate.Range(0, MAX_SKIP))
    limit = fields.Integer(validate=validate.Range(1, MAX_LIMIT))
    sort_by = fields.String(data_key="sortBy", validate=validate.Length(1, 100))
    sort_order = fields.String(data_key="sortOrder", validate=validate.OneOf(["asc", "desc"]))


class CountSchema(ma.Schema):
    count = fields.Integer(metadata={"description": "Documents the filters match"})


class BulkResultSchema(ma.Schema):
    id = fields.String()
    status = fields.String(metadata={"description": "deleted, not_found or refused"})
    error_desc = fields.String()


class BulkResultsSchema(ma.Schema):
    results = fields.List(fields.Nested(BulkResultSchema))


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    text = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


class Timestamp(fields.Field[Any]):
    """Epoch seconds in the store, ISO 8601 UTC on the wire."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return iso(value)
