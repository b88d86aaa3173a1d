"""A list or count request's query parameters as a store ``Page``: TAO's spelling and seed
003's, checked against the collection's field table, with grammar errors as 400s."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from jobyard.api.errors import BadRequest
from jobyard.api.parser import Blueprint
from jobyard.api.services import services
from jobyard.schemas import listquery
from jobyard.schemas.common import SORTS, CountSchema
from jobyard.schemas.listquery import Fields, QueryError
from jobyard.store.paging import NEWEST_FIRST, Page

# TAO's parameter and seed 003's for the same thing: a request uses one of each pair
_SPELLINGS = (("skip", "offset"), ("size", "limit"), ("sort", "sort_by"))
_WIRE = {"sort_by": "sortBy", "sort_order": "sortOrder"}


@contextmanager
def _as_bad_request() -> Iterator[None]:
    try:
        yield
    except QueryError as e:
        raise BadRequest(str(e), {e.param: [str(e)]}) from e


def matching(args: Mapping[str, Any], table: Fields) -> dict[str, Any]:
    """The MongoDB filter of the request's ``filterBy``, ``search`` and TAO filters."""
    with _as_bad_request():
        terms = listquery.param_terms(args, table)
        terms += [
            listquery.parse_term(text, table)
            for text in listquery.split_terms(args.get("filter_by") or [])
        ]
        return listquery.to_mongo(terms, args.get("search"), table)


def requested_page(args: Mapping[str, Any], table: Fields, default_size: int | None = None) -> Page:
    for tao, seed in _SPELLINGS:
        if tao in args and seed in args:
            raise BadRequest(
                f"give {tao} or {_WIRE.get(seed, seed)}, not both",
                {_WIRE.get(seed, seed): ["conflicts with " + tao]},
            )
    if "sort_order" in args and "sort_by" not in args:
        raise BadRequest("sortOrder needs sortBy", {"sortOrder": ["sortOrder needs sortBy"]})
    sort: tuple[tuple[str, int], ...] = NEWEST_FIRST
    if "sort_by" in args:
        with _as_bad_request():
            sort = tuple(listquery.sort_spec(args["sort_by"], args.get("sort_order", "asc"), table))
    elif "sort" in args:
        key, direction = SORTS[args["sort"]]
        sort = ((key, direction), ("_id", direction))
    size = args.get(
        "limit", args.get("size", default_size or services().settings.default_page_size)
    )
    skip = args.get("offset", args.get("skip", 0))
    return Page(skip=skip, size=size, sort=sort, match=matching(args, table))


Counter = Callable[[str, Page, Mapping[str, Any]], int]


def count_route(
    blp: Blueprint, path: str, args: type[ma.Schema], table: Fields, what: str, counter: Counter
) -> None:
    """``GET <list>/count`` (seed 003's shape, ``{"count": N}``) for a list: the same
    filters as the list, no paging. ``counter(org, page, args)`` asks the store."""

    class Count(MethodView):
        @blp.arguments(args, location="query")
        @blp.response(200, CountSchema)
        def get(self, query: dict[str, Any], org_name: str) -> dict[str, Any]:
            return {"count": counter(org_name, Page(match=matching(query, table)), query)}

    Count.get.__doc__ = f"Count {what} matching the list filters"
    Count.__name__ = Count.__qualname__ = f"Count{what.title().replace(' ', '')}"
    blp.route(path)(Count)
