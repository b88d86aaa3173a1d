"""The list grammar's common filters and sorts are index-backed. The query a list page
sends (built by the same functions the API uses) is planned by SecantusDB, which explains
like MongoDB, as a scan of the filter's index (nx-27017 has no ``explain``). SecantusDB's
planner sorts in memory even when an index is in order, so that an index exists for each
common filter and sort, in the sort's order, is checked against the index list itself."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobyard.schemas import listquery
from jobyard.schemas.job import JOB_FIELDS
from jobyard.store.client import INDEXES
from jobyard.store.paging import NEWEST_FIRST, Page

pytestmark = pytest.mark.integration
on_secantus = pytest.mark.parametrize("mongo_server", ["secantus"], indirect=True)
COMMON = [  # (filterBy terms, sortBy + sortOrder) a dashboard sends
    ([], None),
    (["status==Running"], ("createdAt", "desc")),
    (["status==Running"], ("createdAt", "asc")),
    (["network_arch==rtdetr"], ("created_on", "desc")),
    (["createdAt>=2026-01-01"], ("createdAt", "desc")),
    ([], ("name", "asc")),
    (["name=^night"], ("name", "desc")),
    ([], ("updatedAt", "desc")),
]


def _scans(plan: Any) -> list[dict[str, Any]]:
    """Every stage of a plan, outermost first."""
    if isinstance(plan, dict):
        own = [plan] if "stage" in plan else []
        return own + [s for v in plan.values() for s in _scans(v)]
    if isinstance(plan, list):
        return [s for v in plan for s in _scans(v)]
    return []


def _query(filter_by: list[str], sort: tuple[str, str] | None) -> tuple[Page, list[Any]]:
    terms = [listquery.parse_term(t, JOB_FIELDS) for t in filter_by]
    keys = listquery.sort_spec(*sort, JOB_FIELDS) if sort else list(NEWEST_FIRST)
    return Page(size=20, sort=tuple(keys), match=listquery.to_mongo(terms, None, JOB_FIELDS)), keys


@on_secantus
# SecantusDB scans the collection for an anchored regex (=^), which MongoDB serves from
# the index; those cases are left to the index-list check below
@pytest.mark.parametrize(("filter_by", "sort"), [c for c in COMMON if c[0] and "=^" not in c[0][0]])
def test_a_filtered_page_scans_the_filters_index(store, filter_by, sort):
    store.db.jobs.insert_many(
        [
            {
                "_id": f"j{i:03d}",
                "org": "acme",
                "status": ["Running", "Done"][i % 2],
                "network_arch": ["rtdetr", "classification_pyt"][i % 2],
                "name": f"night-{i % 7}",
                "created_on": 1_767_225_600.0 + i,
                "last_modified": 1_767_225_600.0 + i,
                "fingerprint": f"f{i}",
            }
            for i in range(200)
        ]
    )
    page, keys = _query(filter_by, sort)
    cursor = store.db.jobs.find(page.query({"org": "acme"})).sort(keys).limit(page.size)
    plan = cursor.explain()["queryPlanner"]["winningPlan"]
    field = listquery.parse_term(filter_by[0], JOB_FIELDS).field.stored
    scans = [s for s in _scans(plan) if s["stage"] == "IXSCAN"]
    assert scans and list(scans[0]["keyPattern"])[:2] == ["org", field], json.dumps(plan)
    assert len(list(cursor.clone())) == 20


@pytest.mark.parametrize(("filter_by", "sort"), COMMON)
def test_every_common_filter_and_sort_has_an_index_in_the_sorts_order(filter_by, sort):
    page, keys = _query(filter_by, sort)
    equality = [
        t.field.stored
        for t in (listquery.parse_term(f, JOB_FIELDS) for f in filter_by)
        if t.op == "==" and t.field.type is listquery.FieldType.STRING
    ]
    wanted = [("org", 1), *((f, 1) for f in equality), *keys]
    flipped = [("org", 1), *((f, 1) for f in equality), *((k, -d) for k, d in keys)]
    have = [list(index.document["key"].items()) for index in INDEXES["jobs"]]
    assert wanted in have or flipped in have, (wanted, have)
