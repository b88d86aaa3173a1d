"""The store against both MongoDB-wire servers: CAS, paging, org scope, indexes, and the
store's side of each place where nx-27017 and MongoDB differ."""

from __future__ import annotations

import threading

import pytest

from jobyard.schemas.events import Summary
from jobyard.store import jobs as jobs_module
from jobyard.store.cas import compare_and_set
from jobyard.store.errors import Duplicate, NotFound, StaleState
from jobyard.store.fingerprint import forced
from jobyard.store.jobs import public
from jobyard.store.paging import Page, fetch_page
from jobyard.store.timeutil import utcnow
from tests.helpers import on_both_servers

pytestmark = [pytest.mark.integration, on_both_servers]
NO_DETAILS = {"cloud_specific_details": {}}


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


def test_a_released_dispatch_claim_is_not_renewed_back(store):
    """The lease keeper renews from its own thread: a renewal landing just after the
    holder released the claim must not take the job away from the next worker."""
    store.db.jobs.insert_one(
        {"_id": "j1", "status": "Pending", "submitted": False, "claim_until": 0.0, "run": 1}
    )
    assert store.jobs.claim_dispatch("j1", 15) is not None
    assert store.jobs.renew_claim("j1", 1, 15)
    store.jobs.release_claim("j1")
    assert not store.jobs.renew_claim("j1", 1, 15)
    assert store.db.jobs.find_one({"_id": "j1"})["claim_until"] == 0.0
    assert store.jobs.claim_dispatch("j1", 15) is not None


def test_fetch_page_reports_pagination_info(store):
    coll = store.db["things"]
    coll.insert_many(
        [{"_id": str(i), "name": f"n{i:02d}", "created_on": float(i)} for i in range(25)]
    )
    docs, info = fetch_page(coll, {}, Page(skip=20, size=10, sort=(("created_on", 1), ("_id", 1))))
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


# --- where the two servers differ (test_mongo_servers.py): the store leans on neither ---


def test_timestamps_are_epoch_numbers_that_range_queries_compare(store):
    """Numbers, not datetimes: nx-27017 turns a ``$set`` datetime into a string."""
    job = store.jobs.create("acme", "u", {"kind": "experiment"}, "process", forced())
    ws = store.workspaces.create("acme", "u", {"name": "w", "cloud_type": "local"} | NO_DETAILS)
    store.workspaces.replace("acme", ws.id, {"name": "w2", "cloud_type": "local"} | NO_DETAILS)
    moved = store.jobs.update_fields(job["_id"], "Pending", {"started_on": utcnow()})
    stored_ws = store.db["workspaces"].find_one({"_id": ws.id})
    for value in (moved["created_on"], moved["last_modified"], moved["started_on"]):
        assert type(value) is float
    assert type(stored_ws["last_modified"]) is float
    waiting = [d["_id"] for d in store.jobs.unsubmitted(older_than=moved["enqueued_at"] + 1)]
    assert waiting == [job["_id"]]
    assert store.jobs.unsubmitted(older_than=moved["enqueued_at"] - 1) == []


def test_metric_series_are_two_arrays_of_numbers_capped_at_the_limit(store, monkeypatch):
    """Pushed as numbers, never as [x, y] pairs or objects, which nx-27017 stringifies."""
    monkeypatch.setattr(jobs_module, "SERIES_LIMIT", 3)
    job = store.jobs.create("acme", "u", {"kind": "experiment"}, "process", forced())
    first = Summary({"epoch": 2}, {"loss": [[1, 0.9], [2, 0.7]]})
    assert store.jobs.advance_output(job, {"status": 10}, 0, first, 2)
    assert not store.jobs.advance_output(job, {"status": 10}, 0, first, 2)  # offsets moved
    job = store.jobs.find(job["_id"])
    second = Summary({"epoch": 3}, {"loss": [[3, 0.5]], "val_accuracy": [[3, 0.8]]})
    assert store.jobs.advance_output(job, {"status": 20}, 0, second, 1)
    job = store.jobs.find(job["_id"])
    assert job["series"] == {
        "loss": {"x": [1, 2, 3], "y": [0.9, 0.7, 0.5]},
        "val_accuracy": {"x": [3], "y": [0.8]},
    }
    more = Summary({}, {"loss": [[4, 0.4]]})
    assert store.jobs.advance_output(job, {"status": 30}, 0, more, 1)
    job = store.jobs.find(job["_id"])
    assert job["series"]["loss"] == {"x": [2, 3, 4], "y": [0.7, 0.5, 0.4]}
    assert job["events_stored"] == 4 and job["job_details"]["epoch"] == 3
    shown = {g["metric"]: g for g in public(job)["job_details"]["graphical"]}
    assert shown["loss"]["values"] == [0.7, 0.5, 0.4] and shown["loss"]["x_max"] == 4


def test_replacing_onto_an_identical_one_is_a_duplicate_and_changes_nothing(store):
    """MongoDB raises DuplicateKeyError there and nx-27017 returns None: both are a
    Duplicate naming the existing one."""
    taken = store.workspaces.create("acme", "u", {"name": "w", "cloud_type": "local"} | NO_DETAILS)
    other = store.workspaces.create("acme", "u", {"name": "x", "cloud_type": "local"} | NO_DETAILS)
    with pytest.raises(Duplicate) as caught:
        store.workspaces.replace(
            "acme", other.id, {"name": "w", "cloud_type": "local"} | NO_DETAILS
        )
    assert caught.value.existing_id == taken.id
    assert store.workspaces.get("acme", other.id).name == "x"
    with pytest.raises(NotFound):
        store.workspaces.replace(
            "acme", "missing", {"name": "y", "cloud_type": "local"} | NO_DETAILS
        )

    fields = {"name": "d", "type": "vlm", "format": "default"}
    first = store.datasets.create("acme", "u", fields, "starting", False)
    second = store.datasets.create("acme", "u", {**fields, "name": "e"}, "starting", False)
    with pytest.raises(Duplicate) as caught:
        store.datasets.replace("acme", second["_id"], fields, "starting")
    assert caught.value.existing_id == first["_id"]
    assert store.datasets.get("acme", second["_id"])["name"] == "e"


def test_recording_an_uploaded_file_again_replaces_its_record(store):
    """One document per (job, path): a replace upsert whose document carries its _id, which
    nx-27017 would otherwise give a fresh ObjectId on every call."""
    store.uploads.record("j1", "acme", "model.npz", 10, 1.0)
    store.uploads.record("j1", "acme", "model.npz", 12, 2.0)
    store.uploads.record("j1", "acme", "small.json", 1, 1.0)
    assert store.uploads.uploaded("j1") == {"model.npz": (12, 2.0), "small.json": (1, 1.0)}
    assert store.db["job_uploads"].count_documents({"job_id": "j1"}) == 2


def test_curves_take_each_scalar_once_when_a_batch_is_read_again(store):
    def scalar(seq, value):
        return {
            "seq": seq,
            "type": "scalar",
            "metric": "loss",
            "variant": "val",
            "iteration": seq,
            "value": value,
            "ts": 1.0 * seq,
        }

    first = [scalar(1, 0.9), scalar(2, 0.8)]
    assert store.curves.append_many([("j1", "acme", 1, first)]) == 2
    assert store.curves.append_many([("j1", "acme", 1, first)]) == 0  # a crash, re-read
    assert store.curves.append_many([("j1", "acme", 1, [*first, scalar(3, 0.7)])]) == 1
    assert store.curves.append_many([("j1", "acme", 2, [scalar(1, 0.6)])]) == 1  # a resume
    (doc,) = store.curves.for_jobs("acme", ["j1"])
    assert doc["x"] == [1, 2, 3, 1] and doc["y"] == [0.9, 0.8, 0.7, 0.6]
    assert doc["run"] == [1, 1, 1, 2]
    assert store.curves.for_jobs("globex", ["j1"]) == []
