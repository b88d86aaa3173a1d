"""The contract for a ``tao``-protocol workload, on every backend: TAO's own status.json
(through the stand-in, tests/tao/standin.py) read as events and ``job_details``, its YAML
spec with the entry's ``spec_fields`` rendered as the run's machines see paths, its
checkpoints listed, and a derived job started from the checkpoint the job chose."""

from __future__ import annotations

import pytest

from tests.helpers import assert_error
from tests.integration.test_engine import until_status
from tests.tao.catalog import install

pytestmark = pytest.mark.integration

KEY = "tlt_encode"


def rtdetr(s, target, action, specs, **fields):
    """A job of the stand-in's rtdetr entry; no GPU (the entry asks for one by default and
    none of the test clusters has any)."""
    body = target.fields(
        kind="experiment",
        network_arch="rtdetr",
        action=action,
        encryption_key=KEY,
        specs=specs,
        backend_details={"backend_type": "local", **target.body().get("backend_details", {})}
        | {"num_gpus": 0},
        **fields,
    )
    return s.call("POST", "jobs", json=body)


def created(response):
    assert response.status_code == 201, response.json
    return response.json["id"]


def test_a_tao_workload_trains_then_evaluates_from_the_chosen_checkpoint(
    target, session, worker, store, tao_standin
):
    s = session
    ids = install(store, tao_standin)
    worker(**target.worker_env())
    base = f"jobs:schema?action=train&base_experiment_id={ids['rtdetr']}"
    specs = s.call("GET", base).json["default"]
    specs["train"].update(num_epochs=3, standin_epoch_seconds=0.1)
    train_id = created(rtdetr(s, target, "train", specs))
    done = until_status(s, train_id, "Done", timeout=90)
    details = done["job_details"]
    assert (details["epoch"], details["max_epoch"]) == (2, 2)  # TAO counts epochs from 0
    kpi = {k["metric"]: k["value"] for k in details["kpi"]}
    assert 0 < kpi["val_mAP"] < 1 and "train_loss" in kpi  # val_mAP was written as a string
    assert details["time_per_epoch"] and details["eta"]
    events = s.call("GET", f"jobs/{train_id}:events?detailed=true").json["events"]
    assert events[0]["status"] == "STARTED" and events[0]["message"] == "Starting RT-DETR train."
    assert [e["epoch"] for e in events if "time_per_epoch" in e] == [0, 1, 2]
    log = s.call("GET", f"jobs/{train_id}:logs").get_data(as_text=True)
    assert "model_epoch_002.pth" in log and KEY not in log
    # evaluate from epoch 1's checkpoint: spec_fields put its path into the YAML spec
    evaluate = s.call("GET", f"jobs:schema?action=evaluate&base_experiment_id={ids['rtdetr']}")
    chosen = {"checkpoint_choose_method": "from_epoch_number", "checkpoint_epoch_number": 1}
    derived = rtdetr(
        s, target, "evaluate", evaluate.json["default"], parent_job_id=train_id, **chosen
    )
    if not target.lists_results:
        # the parent's files are on the workspace's storage, not reachable here: said so
        refused = assert_error(derived, 400)["error_desc"]
        assert refused.startswith(f"cannot choose a checkpoint of parent job {train_id}")
        return
    files = s.call("POST", f"jobs/{train_id}:list_files", json={}).json
    assert {f"train/model_epoch_{e:03d}.pth" for e in range(3)} <= set(files), files
    assert s.call("GET", f"jobs/{train_id}:get_epoch_numbers").json["data"] == [0, 1, 2]
    missing = rtdetr(
        s,
        target,
        "evaluate",
        evaluate.json["default"],
        parent_job_id=train_id,
        **{**chosen, "checkpoint_epoch_number": 7},
    )
    assert (
        "has no checkpoint of epoch 7 (epochs with a checkpoint: 0, 1, 2"
        in (assert_error(missing, 400)["error_desc"])
    )
    eval_id = created(derived)
    assert s.call("GET", f"jobs/{eval_id}").json["parent_checkpoint"] == (
        "train/model_epoch_001.pth"
    )
    evaluated = until_status(s, eval_id, "Done", timeout=90)
    eval_log = s.call("GET", f"jobs/{eval_id}:logs").get_data(as_text=True)
    assert "train/model_epoch_001.pth" in eval_log, eval_log[-2000:]
    metrics = {k["metric"] for k in evaluated["job_details"]["kpi"]}
    assert {"test_mAP", "test_mAP50"} <= metrics
