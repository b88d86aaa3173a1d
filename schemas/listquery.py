"""Seed 003's list grammar (``filterBy``, ``search``, ``sortBy``/``sortOrder``), compiled into
a MongoDB filter and sort from a per-collection table of fields.

A value only ever becomes a literal: an equality on a string, a regex built from
``re.escape``, a number or an instant. The field name comes from the table, never from the
request, so no part of a request can become an operator (``$where``, ``$ne``) or a path.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_TERMS = 20  # a page needs few filters; many would be an expensive query nobody meant
MAX_VALUE = 500  # no stored value a filter can match is longer


class QueryError(ValueError):
    """What is wrong with a list query, and the parameter it came from."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class FieldType(enum.StrEnum):
    STRING = "string"
    NUMBER = "number"
    DATE = "date"
    BOOL = "bool"


OPERATORS = ("==", "!=", "<=", ">=", "=@", "!@", "=^", "=$")
_TEXT_OPS = ("=@", "!@", "=^", "=$")
ALLOWED: dict[FieldType, tuple[str, ...]] = {
    FieldType.STRING: OPERATORS,
    FieldType.NUMBER: ("==", "!=", "<=", ">="),
    FieldType.DATE: ("==", "!=", "<=", ">="),
    FieldType.BOOL: ("==", "!="),
}
_OP = "|".join(re.escape(op) for op in OPERATORS)
_TERM = re.compile(rf"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*({_OP})(.*)$", re.DOTALL)
# a comma starts a new term only where a field name and an operator follow it, so
# ``name=@a,b`` keeps its comma and ``status==Running,name=@a`` is two terms
_SPLIT = re.compile(rf",(?=\s*[A-Za-z_][A-Za-z0-9_.]*\s*(?:{_OP}))")


@dataclass(frozen=True)
class Field:
    """One filterable field: its name on the wire, where it is in the stored document, its
    type, whether ``search`` looks in it, and which TAO-style query parameter of the same
    name (``?status=Running``) means which operator."""

    name: str
    type: FieldType = FieldType.STRING
    path: str = ""
    aliases: tuple[str, ...] = ()
    search: bool = False
    sort: bool = True
    choices: tuple[str, ...] = ()
    param_op: str = ""

    @property
    def stored(self) -> str:
        return self.path or self.name


@dataclass(frozen=True)
class Fields:
    """A collection's table; adding a filterable field is one ``Field`` line."""

    fields: tuple[Field, ...]
    # families of fields named by a pattern (``last_metrics.<metric>.<variant>.<stat>``)
    patterns: tuple[tuple[re.Pattern[str], FieldType, str], ...] = ()  # (pattern, type, label)
    by_name: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = {name: f for f in self.fields for name in (f.name, *f.aliases)}
        object.__setattr__(self, "by_name", names)

    def get(self, name: str, param: str) -> Field:
        found = self.by_name.get(name)
        for pattern, kind, _ in self.patterns:
            if found is None and pattern.fullmatch(name):
                found = Field(name, kind)
        if found is None:
            known = ", ".join([*sorted(self.by_name), *(label for *_, label in self.patterns)])
            raise QueryError(param, f"unknown field {name!r}; fields: {known}")
        return found

    @property
    def searchable(self) -> list[Field]:
        return [f for f in self.fields if f.search]


@dataclass(frozen=True)
class Term:
    field: Field
    op: str
    value: Any
    until: Any = None  # dates: the end of the instant's precision (``==`` means within it)


def split_terms(raw: Iterable[str]) -> list[str]:
    """``filterBy`` given repeated, comma-separated, or both."""
    terms = [part for item in raw for part in _SPLIT.split(item) if part.strip()]
    if len(terms) > MAX_TERMS:
        raise QueryError("filterBy", f"at most {MAX_TERMS} filterBy terms, got {len(terms)}")
    return terms


def parse_term(text: str, table: Fields) -> Term:
    match = _TERM.match(text)
    if match is None:
        raise QueryError(
            "filterBy",
            f"{text!r} is not 'field operator value'; operators: {' '.join(OPERATORS)}",
        )
    name, op, raw = match.groups()
    found = table.get(name, "filterBy")
    if op not in ALLOWED[found.type]:
        raise QueryError(
            "filterBy",
            f"operator {op} does not apply to {found.type} field {name}; "
            f"use {', '.join(ALLOWED[found.type])}",
        )
    if len(raw) > MAX_VALUE:
        raise QueryError("filterBy", f"the value for {name} is longer than {MAX_VALUE}")
    return _typed(found, op, raw, "filterBy")


def _typed(found: Field, op: str, raw: str, param: str) -> Term:
    if found.type is FieldType.STRING:
        if found.choices and op in ("==", "!=") and raw not in found.choices:
            raise QueryError(
                param, f"{found.name} is one of {', '.join(found.choices)}; got {raw!r}"
            )
        return Term(found, op, raw)
    if found.type is FieldType.NUMBER:
        try:
            number = float(raw)
        except ValueError:
            raise QueryError(param, f"{found.name} takes a number, got {raw!r}") from None
        if number != number or abs(number) > 2**53:  # NaN, inf, beyond exact
            raise QueryError(param, f"{found.name} takes a finite number, got {raw!r}")
        return Term(found, op, int(number) if number.is_integer() else number)
    if found.type is FieldType.BOOL:
        if raw.lower() not in ("true", "false"):
            raise QueryError(param, f"{found.name} is true or false, got {raw!r}")
        return Term(found, op, raw.lower() == "true")
    start, end = parse_instant(raw, found.name, param)
    return Term(found, op, start, end)


def parse_instant(raw: str, name: str, param: str) -> tuple[float, float]:
    """An ISO 8601 instant as the epoch seconds it starts and ends at: ``2026-01-02`` is that
    whole (UTC) day, ``...T10:00:00Z`` that second, ``...T10:00:00.250Z`` that millisecond."""
    text = raw.strip()
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise QueryError(
            param, f"{name} takes an ISO 8601 date or time, e.g. 2026-01-02T10:00:00Z; got {raw!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    _, has_time, time_part = text.upper().partition("T")
    clock = re.split(r"[Z+-]", time_part)[0]
    if not has_time:
        step = timedelta(days=1)
    elif "." in clock:
        step = timedelta(milliseconds=1)
    else:
        step = (timedelta(hours=1), timedelta(minutes=1), timedelta(seconds=1))[
            min(clock.count(":"), 2)
        ]
    return when.timestamp(), (when + step).timestamp()


def _clause(term: Term) -> dict[str, Any]:
    """One term as a top-level clause. Negations are ``$nor``/``$or`` rather than ``$not``,
    which nx-27017 does not implement; all three also match a document without the field,
    as MongoDB's ``$not`` and ``$ne`` do."""
    path, value, op = term.field.stored, term.value, term.op
    if term.field.type is FieldType.DATE:
        if op == "==":
            return {path: {"$gte": value, "$lt": term.until}}
        if op == "!=":
            return {"$or": [{path: {"$lt": value}}, {path: {"$gte": term.until}}]}
        return {path: {"$lt": term.until} if op == "<=" else {"$gte": value}}
    if op in _TEXT_OPS:
        escaped = re.escape(value)
        pattern = {"=@": escaped, "!@": escaped, "=^": "^" + escaped, "=$": escaped + "$"}[op]
        regex = {path: {"$regex": pattern}}
        return {"$nor": [regex]} if op == "!@" else regex
    by_op = {"==": "$eq", "!=": "$ne", "<=": "$lte", ">=": "$gte"}
    return {path: {by_op[op]: value}}


def to_mongo(terms: Sequence[Term], search: str | None, table: Fields) -> dict[str, Any]:
    """The terms (all must hold) and the free-text search (in any searchable field), as one
    MongoDB filter; ``{}`` when there is neither."""
    clauses = [_clause(t) for t in terms]
    if search:
        if len(search) > MAX_VALUE:
            raise QueryError("search", f"search is longer than {MAX_VALUE}")
        pattern = {"$regex": re.escape(search), "$options": "i"}
        clauses.append({"$or": [{f.stored: pattern} for f in table.searchable]})
    if not clauses:
        return {}
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def sort_spec(sort_by: str, order: str, table: Fields) -> list[tuple[str, int]]:
    """Sort keys with ``_id`` as the tie-break, so a page never repeats or skips a document
    that shares its sort value with others, however many are inserted meanwhile."""
    found = table.get(sort_by, "sortBy")
    if not found.sort:
        sortable = ", ".join(f.name for f in table.fields if f.sort)
        raise QueryError("sortBy", f"{sort_by} is not sortable; sortable: {sortable}")
    direction = -1 if order == "desc" else 1
    return [(found.stored, direction), ("_id", direction)]


def param_terms(args: Mapping[str, Any], table: Fields) -> list[Term]:
    """TAO's own filters (``?status=Running``, ``?name=part``) as terms of the same grammar."""
    terms = []
    for f in table.fields:
        value = args.get(f.name)
        if f.param_op and value is not None and value != "":
            raw = value if isinstance(value, str) else str(value).lower()
            terms.append(_typed(f, f.param_op, raw, f.name))
    return terms
