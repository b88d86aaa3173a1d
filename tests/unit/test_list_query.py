"""The list grammar's pure half: splitting ``filterBy``, the instants a date stands for,
and that whatever a value holds, the filter it compiles to has only the operators the
grammar itself writes, with the value as a literal."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from jobyard.schemas import listquery
from jobyard.schemas.listquery import Field, Fields, FieldType, QueryError

TABLE = Fields(
    (
        Field("name", search=True, param_op="=@"),
        Field("status", choices=("Running", "Done"), param_op="=="),
        Field("runs", FieldType.NUMBER, path="run"),
        Field("created", FieldType.DATE, path="created_on", aliases=("createdAt",)),
        Field("builtin", FieldType.BOOL),
        Field("notes", sort=False, search=True),
    )
)
OUR_OPERATORS = {"$and", "$or", "$nor", "$eq", "$ne", "$lte", "$gte", "$lt", "$regex", "$options"}
NASTY = ["$where", '{"$ne": null}', ".*", "a|b", "(", "[x]", "\\", "^$", "a,b==c", "\n", "é€"]


def test_filter_by_splits_on_commas_that_start_a_term_only():
    assert listquery.split_terms(["status==Running,name=^classification"]) == [
        "status==Running",
        "name=^classification",
    ]
    assert listquery.split_terms(["name=@a,b", "runs>=2"]) == ["name=@a,b", "runs>=2"]
    with pytest.raises(QueryError, match="at most 20"):
        listquery.split_terms([",".join(["runs==1"] * 21)])


@pytest.mark.parametrize(
    ("text", "start", "seconds"),
    [
        ("2026-01-02", datetime(2026, 1, 2, tzinfo=UTC), 86400),
        ("2026-01-02T10", datetime(2026, 1, 2, 10, tzinfo=UTC), 3600),
        ("2026-01-02T10:30", datetime(2026, 1, 2, 10, 30, tzinfo=UTC), 60),
        ("2026-01-02T10:30:05Z", datetime(2026, 1, 2, 10, 30, 5, tzinfo=UTC), 1),
        ("2026-01-02T12:30:05+02:00", datetime(2026, 1, 2, 10, 30, 5, tzinfo=UTC), 1),
        ("2026-01-02T10:30:05.250Z", datetime(2026, 1, 2, 10, 30, 5, 250000, tzinfo=UTC), 0.001),
    ],
)
def test_a_date_stands_for_the_span_of_its_precision(text, start, seconds):
    begin, end = listquery.parse_instant(text, "created", "filterBy")
    assert begin == start.timestamp()
    assert end - begin == pytest.approx(seconds, abs=1e-6)


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return {k for k in node} | {k for v in node.values() for k in _keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _keys(v)}
    return set()


@pytest.mark.parametrize("value", NASTY)
@pytest.mark.parametrize("op", listquery.OPERATORS)
def test_a_value_is_only_ever_a_literal(value, op):
    term = listquery.parse_term(f"name{op}{value}", TABLE)
    query = listquery.to_mongo([term], value, TABLE)
    assert _keys(query) <= OUR_OPERATORS | {"name", "notes"}
    clause = query["$and"][0]
    if op in ("==", "!=", "<=", ">="):
        assert list(clause["name"].values()) == [value]
    else:
        regex = (clause.get("name") or clause["$nor"][0]["name"])["$regex"]
        probe = {"=@": f"x{value}y", "!@": f"x{value}y", "=^": f"{value}y", "=$": f"x{value}"}[op]
        assert re.search(regex, probe, re.DOTALL)
        assert not re.search(regex, "x" + value[:-1] + "y") or len(value) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("owner==x", "unknown field 'owner'"),
        ("created=@2026", "operator =@ does not apply to date field created"),
        ("builtin>=true", "operator >= does not apply to bool field builtin"),
        ("builtin==yes", "true or false"),
        ("runs==inf", "finite"),
        ("status==running", "one of Running, Done"),
        ("no operator here", "field operator value"),
        ("name==" + "x" * 501, "longer than 500"),
    ],
)
def test_bad_terms_say_what_is_wrong(text, message):
    with pytest.raises(QueryError, match=re.escape(message)) as caught:
        listquery.parse_term(text, TABLE)
    assert caught.value.param == "filterBy"


def test_types_become_what_is_stored():
    assert listquery.to_mongo([listquery.parse_term("runs>=2", TABLE)], None, TABLE) == {
        "run": {"$gte": 2}
    }
    assert listquery.to_mongo([listquery.parse_term("runs==2.5", TABLE)], None, TABLE) == {
        "run": {"$eq": 2.5}
    }
    assert listquery.to_mongo([listquery.parse_term("builtin!=TRUE", TABLE)], None, TABLE) == {
        "builtin": {"$ne": True}
    }
    day = datetime(2026, 1, 2, tzinfo=UTC).timestamp()
    assert listquery.to_mongo(
        [listquery.parse_term("createdAt!=2026-01-02", TABLE)], None, TABLE
    ) == {"$or": [{"created_on": {"$lt": day}}, {"created_on": {"$gte": day + 86400}}]}
    assert listquery.to_mongo([], None, TABLE) == {}


def test_sorting_names_a_sortable_field_and_breaks_ties_on_id():
    assert listquery.sort_spec("createdAt", "desc", TABLE) == [("created_on", -1), ("_id", -1)]
    assert listquery.sort_spec("name", "asc", TABLE) == [("name", 1), ("_id", 1)]
    with pytest.raises(QueryError, match="not sortable; sortable: name, status"):
        listquery.sort_spec("notes", "asc", TABLE)
    with pytest.raises(QueryError, match="unknown field 'nope'") as caught:
        listquery.sort_spec("nope", "asc", TABLE)
    assert caught.value.param == "sortBy"


def test_tao_parameters_are_terms_of_the_grammar():
    terms = listquery.param_terms({"name": "cls", "status": "Done", "runs": 3}, TABLE)
    assert [(t.field.name, t.op, t.value) for t in terms] == [
        ("name", "=@", "cls"),
        ("status", "==", "Done"),
    ]
