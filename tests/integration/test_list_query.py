"""Seed 003's list grammar on a real collection, both MongoDB-wire servers: every operator
on every field type against the same predicate evaluated in Python over the same
documents, values that look like query operators or regexes matched literally, bad
queries refused naming the problem, and pages that neither repeat nor skip under ties."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from jobyard.store.jobdoc import new_job
from tests.helpers import assert_error, on_both_servers

pytestmark = [pytest.mark.integration, on_both_servers]

DAY = datetime(2026, 1, 2, tzinfo=UTC).timestamp()
NAMES = [
    "alpha-1",
    "Alpha-2",
    "beta.3",
    "a.*b",
    "x[1]",
    "dollar$where",
    'json{"$ne": ""}',
    "caret^start",
    "back\\slash",
    "gamma",
    "gamma",
    "delta-1",
]
STATUSES = ["Running", "Done", "Pending", "Error"]
ARCHS = ["classification_pyt", "rtdetr", "classification_tf2"]


def _docs(org: str) -> list[dict[str, Any]]:
    docs = []
    for i, name in enumerate(NAMES):
        doc = dict(new_job(org, "u1", {"kind": "experiment", "action": "train"}, "local", f"f{i}"))
        doc.update(
            _id=f"{org}-{i:02d}",
            name=name,
            description=f"run {i} of the {ARCHS[i % 3]} sweep",
            status=STATUSES[i % 4],
            network_arch=ARCHS[i % 3],
            run=1 + i % 3,
            timeout_minutes=30 + 7.5 * i,
            created_on=DAY - 7200 + 3600 * i + 0.25,  # 22:00 the day before, hourly
        )
        docs.append(doc)
    return docs


@pytest.fixture
def listed(login, store):
    """A session over an org holding the documents (and another org holding the same)."""
    store.db.jobs.insert_many(_docs("acme") + _docs("globex"))
    session = login()

    def ids(query: str, path: str = "jobs") -> list[str]:
        paging = "" if "limit=" in query else "size=1000&"
        got = session.call("GET", f"{path}?{paging}{query}")
        assert got.status_code == 200, got.json
        return [j["id"] for j in got.json["jobs"]]

    return session, ids


def _expected(pred: Callable[[dict[str, Any]], bool]) -> list[str]:
    docs = sorted(_docs("acme"), key=lambda d: d["created_on"], reverse=True)
    return [d["_id"] for d in docs if pred(d)]


def _on_day(t: float) -> bool:
    return DAY <= t < DAY + 86400


CASES: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
    # strings: every operator
    ("name==gamma", lambda d: d["name"] == "gamma"),
    ("name!=gamma", lambda d: d["name"] != "gamma"),
    ("name=@pha", lambda d: "pha" in d["name"]),
    ("name!@pha", lambda d: "pha" not in d["name"]),
    ("name=^alpha", lambda d: d["name"].startswith("alpha")),
    ("name=$-1", lambda d: d["name"].endswith("-1")),
    ("name<=beta", lambda d: d["name"] <= "beta"),
    ("name>=beta", lambda d: d["name"] >= "beta"),
    ("status==Running", lambda d: d["status"] == "Running"),
    ("description=@rtdetr sweep", lambda d: "rtdetr sweep" in d["description"]),
    # numbers
    ("run==2", lambda d: d["run"] == 2),
    ("run!=2", lambda d: d["run"] != 2),
    ("run<=2", lambda d: d["run"] <= 2),
    ("run>=2", lambda d: d["run"] >= 2),
    ("timeout_minutes>=52.5", lambda d: d["timeout_minutes"] >= 52.5),
    # dates: == and != cover the precision given, <= and >= include it
    ("createdAt==2026-01-02", lambda d: _on_day(d["created_on"])),
    ("created_on!=2026-01-02", lambda d: not _on_day(d["created_on"])),
    ("createdAt>=2026-01-02T03:00:00Z", lambda d: d["created_on"] >= DAY + 3 * 3600),
    ("createdAt<=2026-01-02T03:00:00Z", lambda d: d["created_on"] < DAY + 3 * 3600 + 1),
    (
        "created_on==2026-01-02T01:00:00.250Z",
        lambda d: d["created_on"] == DAY + 3600 + 0.25,
    ),
    ("created_on>=2026-01-02T05:00:00+02:00", lambda d: d["created_on"] >= DAY + 3 * 3600),
    # several terms, comma-separated (seed 003's example shape) and repeated
    (
        "filterBy=status==Running,network_arch=^classification",
        lambda d: d["status"] == "Running" and d["network_arch"].startswith("classification"),
    ),
    (
        "filterBy=run>=2&filterBy=name=@a",
        lambda d: d["run"] >= 2 and "a" in d["name"],
    ),
    # values that mean something to MongoDB or to a regex are literal
    ("name=@.*", lambda d: ".*" in d["name"]),
    ("name==a.*b", lambda d: d["name"] == "a.*b"),
    ("name=@[1]", lambda d: "[1]" in d["name"]),
    ("name=@$where", lambda d: "$where" in d["name"]),
    ('name=={"$ne": ""}', lambda d: d["name"] == '{"$ne": ""}'),
    ('name=@{"$ne": ""}', lambda d: '{"$ne": ""}' in d["name"]),
    ("name=^caret^", lambda d: d["name"].startswith("caret^")),
    ("name=$\\slash", lambda d: d["name"].endswith("\\slash")),
    ("name=@(", lambda d: "(" in d["name"]),
    ("id==acme-03", lambda d: d["_id"] == "acme-03"),
]


@pytest.mark.parametrize(("query", "pred"), CASES, ids=[c[0] for c in CASES])
def test_every_operator_matches_what_python_says(listed, query, pred):
    session, ids = listed
    param = query if query.startswith("filterBy=") else "filterBy=" + _quote(query)
    expected = _expected(pred)
    assert ids(param) == expected
    count = session.call("GET", f"jobs/count?{param}").json
    assert count == {"count": len(expected)}


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def test_search_is_case_insensitive_over_the_searchable_fields(listed):
    _, ids = listed
    assert ids("search=ALPHA") == _expected(lambda d: "alpha" in d["name"].lower())
    assert ids("search=" + _quote("rtdetr sweep")) == _expected(
        lambda d: "rtdetr sweep" in d["description"]
    )
    assert ids("search=" + _quote(".*")) == _expected(lambda d: ".*" in d["name"])


def test_tao_filters_are_the_same_grammar(listed):
    _, ids = listed
    assert ids("status=Done&name=a") == _expected(
        lambda d: d["status"] == "Done" and "a" in d["name"]
    )
    assert ids("network_arch=rtdetr&filterBy=run>=2") == _expected(
        lambda d: d["network_arch"] == "rtdetr" and d["run"] >= 2
    )


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("filterBy=owner==x", ["owner", "fields"]),
        ("filterBy=created_on=@2026", ["=@", "date", "created_on"]),
        ("filterBy=run=^1", ["=^", "number"]),
        ("filterBy=run==two", ["run", "number", "two"]),
        ("filterBy=created_on>=yesterday", ["ISO 8601", "yesterday"]),
        ("filterBy=status==Runing", ["Running", "Runing"]),
        ("filterBy=justtext", ["field operator value"]),
        ("filterBy=run==nan", ["finite"]),
        ("limit=0", ["limit"]),
        ("limit=501", ["limit"]),
        ("sortBy=owner", ["owner"]),
        ("sortBy=description", ["not sortable"]),
        ("sortOrder=desc", ["sortBy"]),
        ("sortBy=name&sortOrder=down", ["sortOrder"]),
        ("skip=1&offset=1", ["skip", "offset"]),
        ("size=1&limit=1", ["size", "limit"]),
        ("sort=date-ascending&sortBy=name", ["sort", "sortBy"]),
        ("status[$ne]=Done", ["status[$ne]"]),
        ("name[$regex]=.*", ["name[$regex]"]),
        ("filterBy[$where]=1", ["filterBy[$where]"]),
    ],
)
def test_a_bad_query_is_a_400_naming_the_problem(listed, query, names):
    session, _ = listed
    for path in (
        ("jobs", "jobs/count") if "limit" not in query and "sort" not in query else ("jobs",)
    ):
        body = assert_error(session.call("GET", f"{path}?{query}"), 400)
        text = str(body)
        for name in names:
            assert name in text, (path, query, body)


@pytest.mark.parametrize(
    ("sort_by", "order", "key"),
    [
        ("name", "asc", lambda d: d["name"]),
        ("name", "desc", lambda d: d["name"]),
        ("createdAt", "desc", lambda d: d["created_on"]),
        ("run", "asc", lambda d: d["run"]),
        ("status", "desc", lambda d: d["status"]),
    ],
)
def test_sort_by_with_ties_broken_by_id_pages_without_repeats(listed, sort_by, order, key):
    _, ids = listed
    reverse = order == "desc"
    docs = sorted(_docs("acme"), key=lambda d: (key(d), d["_id"]), reverse=reverse)
    expected = [d["_id"] for d in docs]
    base = f"sortBy={sort_by}&sortOrder={order}"
    assert ids(base) == expected
    pages = [ids(f"{base}&offset={o}&limit=5").__iter__() for o in (0, 5, 10)]
    assert list(itertools.chain(*pages)) == expected


def test_pages_before_an_insert_point_do_not_move(listed, store):
    """Ties everywhere (run has three values): the tie-break keeps a page's members fixed
    while documents that sort after it arrive."""
    _, ids = listed
    first = ids("sortBy=run&offset=0&limit=4")
    later = [
        dict(d, _id=f"acme-z{i}", run=3, fingerprint=f"z{i}")
        for i, d in enumerate(_docs("acme")[:5])
    ]
    store.db.jobs.insert_many(later)
    assert ids("sortBy=run&offset=0&limit=4") == first


def test_other_lists_take_the_same_grammar(listed, login, store):
    session, _ = listed
    for name in ("w-one", "w-two", "other"):
        created = session.call("POST", "workspaces", json={"name": name, "cloud_type": "local"})
        assert created.status_code == 201, created.json
    got = session.call("GET", "workspaces?filterBy=name=^w-&sortBy=name&sortOrder=desc").json
    assert [w["name"] for w in got["workspaces"]] == ["w-two", "w-one"]
    assert session.call("GET", "workspaces/count?search=W-").json == {"count": 2}
    builtin = sorted(d["_id"] for d in store.db.catalog.find({"builtin": True}))
    entries = session.call("GET", "base_experiments?filterBy=builtin==true&limit=500").json
    assert sorted(e["id"] for e in entries["base_experiments"]) == builtin
    counted = session.call("GET", "base_experiments/count?filterBy=builtin!=true").json
    assert counted == {"count": 0}
    assert session.call("GET", "datasets/count?filterBy=type==object_detection").json == {
        "count": 0
    }
    assert_error(session.call("GET", "datasets?filterBy=cloud_type==local"), 400)
