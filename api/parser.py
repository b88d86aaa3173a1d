"""Request parsing shared by every blueprint.

Two departures from webargs' defaults, both for TAO compatibility: bad input
is a 400 (seed 001), not 422; and a JSON body is read whatever its
Content-Type, because seed 000's own scripts post JSON with plain
``curl -d`` (which sends ``application/x-www-form-urlencoded``).
"""

from __future__ import annotations

from typing import Any

import flask
import flask_smorest
import marshmallow as ma
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

_FORM_TYPES = {"multipart/form-data"}


class JsonAnywayParser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400
    # an unknown query parameter is a typo to report, not a filter to ignore
    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": ma.RAISE,
        "querystring": ma.RAISE,
    }

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req) and req.mimetype in _FORM_TYPES:
            return core.missing
        body = req.get_data(cache=True)
        if not body.strip():
            return core.missing
        return core.parse_json(body)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = JsonAnywayParser()

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Any:
        """As flask-smorest's, with a schema class made an instance once: webargs would
        build a new one for every request (a measurable part of a small request)."""
        if isinstance(schema, type) and issubclass(schema, ma.Schema):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)
