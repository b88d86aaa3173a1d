"""One page of any collection: the filter and sort ``schemas.listquery`` compiled, skip and
size, with TAO's ``pagination_info``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo.collection import Collection

NEWEST_FIRST = (("created_on", -1), ("_id", -1))


@dataclass(frozen=True)
class Page:
    skip: int = 0
    size: int = 100
    sort: tuple[tuple[str, int], ...] = NEWEST_FIRST
    match: Mapping[str, Any] = field(default_factory=dict)

    def query(self, scope: Mapping[str, Any]) -> dict[str, Any]:
        """The page's filter within ``scope`` (the org's documents): one ``$and`` only when
        both constrain the same field, so the plain form stays what the indexes match."""
        if not self.match:
            return dict(scope)
        if set(scope).isdisjoint(self.match):
            return {**scope, **self.match}
        return {"$and": [dict(scope), dict(self.match)]}


def fetch_page(
    collection: Collection[dict[str, Any]], scope: Mapping[str, Any], page: Page
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    query = page.query(scope)
    total = count(collection, query)
    cursor = collection.find(query).sort(list(page.sort))
    docs = list(cursor.skip(page.skip).limit(page.size)) if page.size else []
    info = {
        "total_records": total,
        "total_pages": math.ceil(total / page.size) if page.size else 0,
        "page_size": page.size,
        "page_index": page.skip // page.size if page.size else 0,
    }
    return docs, info


def empty_page(size: int) -> dict[str, int]:
    """``pagination_info`` of a list that matched nothing."""
    return {"total_records": 0, "total_pages": 0, "page_size": size, "page_index": 0}


def count(collection: Collection[dict[str, Any]], query: dict[str, Any]) -> int:
    """``count_documents`` spelled as the aggregation it is on MongoDB: the same plan there,
    and an index-backed match instead of a full scan on nx-27017 (bench: 100k jobs, the
    list page went from ~22 s to ~0.6 s)."""
    found = list(collection.aggregate([{"$match": query}, {"$count": "n"}]))
    return int(found[0]["n"]) if found else 0
