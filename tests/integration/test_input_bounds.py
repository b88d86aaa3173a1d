"""Every input the OpenAPI document lists is bounded, and out of bounds is a 400 naming the
field: an integer too large for MongoDB (pymongo raises past 8 bytes) never becomes a 500,
and a query value never grows near gunicorn's request-line limit (4094 bytes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests import openapi
from tests.helpers import assert_error

pytestmark = pytest.mark.integration

OVERSIZED = 10**30
INT64 = 2**63
LONG_TEXT = "x" * 3000  # a URL with it still fits gunicorn's request line
MAX_QUERY_TEXT = 1000  # the largest maxLength a string query parameter may document
KNOWN_INTEGERS = {"early_stop_epoch", "offset", "after_seq", "run", "skip", "size"}


@dataclass(frozen=True)
class Input:
    """One input of one operation: a query parameter or a value inside the JSON body."""

    operation: openapi.Operation
    location: str  # "query" or "json"
    steps: tuple[openapi.Step, ...]
    schema: dict[str, Any]

    @property
    def field(self) -> str:
        return next(s[1] for s in reversed(self.steps) if s[0] == "prop")

    def __str__(self) -> str:
        where = ".".join(s[1] if s[0] == "prop" else "[]" for s in self.steps)
        return f"{self.operation.name} {self.location}:{where}"

    def send(self, session: Any, paths: dict[str, str], value: Any) -> Any:
        url = self.operation.url(paths)
        kwargs: dict[str, Any] = {"headers": session.headers, "method": self.operation.method}
        if self.location == "query":
            kwargs["query_string"] = {self.field: str(value)}
        else:
            kwargs["json"] = openapi.body_with(self.steps, value)
        return session.client.open(url, **kwargs)

    def refused(self, response: Any) -> str | None:
        """Why ``response`` is not a 400 in the error shape naming this input, or None."""
        try:
            body = assert_error(response, 400)
        except AssertionError as e:
            return f"{self}: {e}"
        keys = [self.field] if self.location == "query" else openapi.error_keys(self.steps)
        if not openapi.names_field(body.get("errors"), keys):
            return f"{self}: errors do not name {'.'.join(keys)}: {body}"
        return None


def inputs(document: dict[str, Any], kind: str) -> list[Input]:
    """Every query parameter and JSON body value of JSON type ``kind``, of every operation."""
    found = []
    for op in openapi.operations(document):
        for param in op.query():
            if param["schema"].get("type") == kind:
                steps = (("prop", param["name"]),)
                found.append(Input(op, "query", steps, param["schema"]))
        body = op.body_schema()
        if body is not None:
            for steps in openapi.values_of_type(document, body, kind):
                schema = _schema_at(document, body, steps)
                found.append(Input(op, "json", steps, schema))
    return found


def _schema_at(
    document: dict[str, Any], schema: Any, steps: tuple[openapi.Step, ...]
) -> dict[str, Any]:
    schema = openapi.resolve(document, schema)
    for step in steps:
        if step[0] == "prop":
            schema = openapi.resolve(document, schema["properties"][step[1]])
        elif step[0] == "item":
            schema = openapi.resolve(document, schema["items"])
        else:
            schema = openapi.resolve(document, schema["additionalProperties"])
    return dict(schema)


@pytest.fixture
def admin(login):
    """An admin, so that admin-only operations reach their validation too."""
    return login(admin=True)


@pytest.fixture
def paths(admin):
    return openapi.create_resources(admin)


def test_the_document_lists_the_integer_inputs_we_know(client):
    found = {i.field for i in inputs(openapi.spec(client), "integer")}
    assert KNOWN_INTEGERS <= found, KNOWN_INTEGERS - found


def _fits_64_bits(schema: dict[str, Any]) -> bool:
    low, high = schema.get("minimum"), schema.get("maximum")
    return low is not None and high is not None and -INT64 <= low <= high < INT64


def test_every_integer_input_documents_a_range_that_fits_in_64_bits(client):
    found = inputs(openapi.spec(client), "integer")
    unbounded = [f"{i} {i.schema}" for i in found if not _fits_64_bits(i.schema)]
    assert not unbounded, "\n".join(unbounded)


@pytest.mark.parametrize("value", [OVERSIZED, -OVERSIZED], ids=["huge", "huge-negative"])
def test_every_integer_input_refuses_a_value_past_64_bits_with_a_400_naming_it(
    client, admin, paths, value
):
    found = inputs(openapi.spec(client), "integer")
    assert found
    problems = [p for i in found if (p := i.refused(i.send(admin, paths, value)))]
    assert not problems, "\n".join(problems)


def _short(schema: dict[str, Any]) -> bool:
    return "enum" in schema or schema.get("maxLength", MAX_QUERY_TEXT + 1) <= MAX_QUERY_TEXT


def test_every_string_query_parameter_is_an_enum_or_bounded(client):
    found = [i for i in inputs(openapi.spec(client), "string") if i.location == "query"]
    unbounded = [f"{i} {i.schema}" for i in found if not _short(i.schema)]
    assert not unbounded, "\n".join(unbounded)


def test_every_string_query_parameter_refuses_a_long_value_with_a_400_naming_it(
    client, admin, paths
):
    found = [i for i in inputs(openapi.spec(client), "string") if i.location == "query"]
    assert {"name", "sort", "action"} <= {i.field for i in found}
    problems = [p for i in found if (p := i.refused(i.send(admin, paths, LONG_TEXT)))]
    assert not problems, "\n".join(problems)
