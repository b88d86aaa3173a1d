"""One reconcile write per job: an output advance and a state change in one ``$set``."""

from __future__ import annotations

from jobyard.store.jobs import merge_sets


def test_a_sub_field_goes_into_the_value_already_set():
    sets = {"job_details.detailed_status": {"message": "epoch 3/3", "status": "SUCCESS"}}
    merge_sets(sets, {"job_details.detailed_status.message": "completed", "status": "Done"})
    assert sets == {
        "job_details.detailed_status": {"message": "completed", "status": "SUCCESS"},
        "status": "Done",
    }


def test_unrelated_and_nested_keys():
    original = {"message": "x"}
    sets = {"job_details.detailed_status": original, "offsets.status": 10}
    merge_sets(sets, {"job_details.detailed_status.a.b": 1, "job_details.epoch": 3})
    assert sets["job_details.detailed_status"] == {"message": "x", "a": {"b": 1}}
    assert sets["job_details.epoch"] == 3 and sets["offsets.status"] == 10
    assert original == {"message": "x"}  # the advance's own value is not changed in place
