"""The store against a real MongoDB-wire server: CAS, paging, org scope, indexes."""

from __future__ import annotations

import threading

import pytest

from jobyard.store.cas import compare_and_set
from jobyard.store.errors import NotFound, StaleState
from jobyard.store.paging import Page, fetch_page

pytestmark = pytest.mark.integration


def test_compare_and_set_moves_only_from_an_expected_state(store):
    coll = store.db["things"]
    coll.insert_one({"_id": "t1", "state": "Pending"})
    doc = compare_and_set(
        coll, "thing", {"_id": "t1"}, "state", ["Pending"], {"$set": {"state": "Running"}}
    )
    assert doc["state"] == "Running"
    with pytest.raises(StaleState) as caught:
        compare_and_set(
            coll, "thing", {"_id": "t1"}, "state", ["Pending"], {"$set": {"state": "Done"}}
        )
    assert caught.value.actual == "Running"
    with pytest.raises(NotFound):
        compare_and_set(
            coll, "thing", {"_id": "nope"}, "state", ["Pending"], {"$set": {"state": "x"}}
        )


def test_only_one_of_many_concurrent_claims_wins(store):
    coll = store.db["things"]
    coll.insert_one({"_id": "t1", "state": "Pending"})
    winners, lock = [], threading.Lock()

    def claim(n: int) -> None:
        try:
            compare_and_set(
                coll,
                "thing",
                {"_id": "t1"},
                "state",
                ["Pending"],
                {"$set": {"state": "Claimed", "by": n}},
            )
            with lock:
                winners.append(n)
        except StaleState:
            pass

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert coll.find_one({"_id": "t1"})["by"] == winners[0]


def test_fetch_page_reports_pagination_info(store):
    coll = store.db["things"]
    coll.insert_many(
        [{"_id": str(i), "name": f"n{i:02d}", "created_on": float(i)} for i in range(25)]
    )
    docs, info = fetch_page(coll, {}, Page(skip=20, size=10, sort="date-ascending"))
    assert [d["_id"] for d in docs] == [str(i) for i in range(20, 25)]
    assert info == {"total_records": 25, "total_pages": 3, "page_size": 10, "page_index": 2}


def test_users_are_unique_per_org_and_promotion_sticks(store):
    first = store.accounts.ensure_user("acme", "alice")
    again = store.accounts.ensure_user("acme", "alice", is_admin=True)
    assert first.id == again.id and again.is_admin
    other = store.accounts.ensure_user("globex", "alice")
    assert other.id != first.id


def test_workspace_reads_are_scoped_by_org(store):
    ws = store.workspaces.create("acme", "u1", {"name": "w", "cloud_type": "local"})
    with pytest.raises(NotFound):
        store.workspaces.get("globex", ws.id)
    with pytest.raises(NotFound):
        store.workspaces.delete("globex", ws.id)
    assert store.workspaces.get("acme", ws.id).name == "w"


def test_indexes_exist_after_start_up(store):
    names = {tuple(ix["key"]) for ix in store.db["users"].list_indexes()}
    assert ("org", "name") in names
