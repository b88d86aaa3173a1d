"""Compare-and-set: the only way a state field changes.

A transition names the states it may start from; if the document is in any
other state nothing is written and ``StaleState`` says what was found. Two
workers, a user's cancel and a timeout can therefore race safely.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pymongo import ReturnDocument
from pymongo.collection import Collection

from jobyard.store.errors import NotFound, StaleState


def compare_and_set(
    collection: Collection[dict[str, Any]],
    kind: str,
    query: Mapping[str, Any],
    field: str,
    expected: Iterable[Any],
    update: Mapping[str, Any],
) -> dict[str, Any]:
    allowed = list(expected)
    doc = collection.find_one_and_update(
        {**query, field: {"$in": allowed}}, dict(update), return_document=ReturnDocument.AFTER
    )
    if doc is not None:
        return doc
    current = collection.find_one(dict(query), {field: 1})
    ident = str(query.get("_id", query))
    if current is None:
        raise NotFound(kind, ident)
    raise StaleState(kind, ident, allowed, current.get(field))
