"""Metrics as ClearML models them, from real runs of the reference workload on both
MongoDB-wire servers: every epoch's scalars as curves across a pause and resume,
``last_metrics`` kept at ingest and usable as a sort key, the curves of several jobs side
by side, and an evaluate job's confusion matrix as a plot event with per-class accuracy
in ``categorical``."""

from __future__ import annotations

import json

import pytest

from tests.helpers import assert_error, on_both_servers, wait_for
from tests.integration.test_engine import derived, train, until_status

pytestmark = [pytest.mark.integration, on_both_servers]


def _curve_events(store, job_id):
    return [e for e in store.events.list_for_job("acme", job_id) if e.get("type") == "scalar"]


def test_curves_last_metrics_compare_and_the_confusion_matrix(login, worker, store):
    s = login()
    worker()
    first, second = train(s, epochs=3), train(s, epochs=2, name="second")
    until_status(s, first, "Done")
    until_status(s, second, "Done")

    got = s.call("GET", f"jobs/{first}:metrics?times=true").json
    assert set(got["metrics"]) == {"loss", "accuracy"}
    val = got["metrics"]["accuracy"]["val"]
    raw = [
        e
        for e in _curve_events(store, first)
        if e["metric"] == "accuracy" and e["variant"] == "val"
    ]
    # to 15 significant digits: nx-27017 rounds the floats of an updated document
    # (test_mongo_servers.py), so a curve grown by a second batch differs in the 16th
    assert val["x"] == [1, 2, 3] and val["y"] == pytest.approx([e["value"] for e in raw], 1e-14)
    assert val["run"] == [1, 1, 1] and all(isinstance(t, float) for t in val["t"])
    only = s.call("GET", f"jobs/{first}:metrics?metric=val_accuracy").json["metrics"]
    assert list(only) == ["accuracy"] and list(only["accuracy"]) == ["val"]

    job = s.call("GET", f"jobs/{first}").json
    stats = job["last_metrics"]["accuracy"]["val"]
    ys = val["y"]
    assert stats["count"] == 3 and stats["max_iteration"] == 1 + ys.index(max(ys))
    first_last_max = [stats["first"], stats["last"], stats["max"]]
    assert first_last_max == pytest.approx([ys[0], ys[-1], max(ys)], 1e-14)
    assert stats["mean"] == pytest.approx(sum(ys) / 3)

    ordered = s.call("GET", "jobs?sortBy=last_metrics.accuracy.val.max&sortOrder=desc").json
    best = [j["last_metrics"]["accuracy"]["val"]["max"] for j in ordered["jobs"]]
    assert best == sorted(best, reverse=True) and len(best) == 2
    assert (
        "last_metrics.<metric>.<variant>.<stat>"
        in assert_error(s.call("GET", "jobs?sortBy=last_metrics.accuracy"), 400)["error_desc"]
    )

    compared = s.call("GET", f"jobs:compare?job_ids={first},{second}&metric=accuracy").json
    assert [row["id"] for row in compared["jobs"]] == [first, second]
    assert compared["jobs"][0]["variants"]["val"]["y"] == ys
    assert len(compared["jobs"][1]["variants"]["train"]["x"]) == 2
    assert compared["jobs"][1]["last_metrics"]["val"]["count"] == 2
    assert_error(s.call("GET", f"jobs:compare?job_ids={first},nope&metric=accuracy"), 404)

    evaluation = derived(s, "evaluate", first)
    done = until_status(s, evaluation, "Done")
    (categorical,) = done["job_details"]["categorical"]
    assert categorical["metric"] == "per_class_accuracy"
    assert len(categorical["category_wise_values"]) == 10
    plots = s.call("GET", f"jobs/{evaluation}:metrics?type=plot").json["events"]
    (plot,) = plots
    figure = json.loads(plot["plot_str"])
    matrix = figure["data"][0]["z"]
    assert plot["metric"] == "confusion_matrix" and len(matrix) == 10
    evaluated = done["job_details"]["kpi"]
    assert sum(map(sum, matrix)) > 0 and any(k["metric"] == "accuracy" for k in evaluated)
    diagonal = sum(matrix[i][i] for i in range(10)) / sum(map(sum, matrix))
    accuracy = next(k["value"] for k in evaluated if k["metric"] == "accuracy")
    assert diagonal == pytest.approx(accuracy) and diagonal > 0.5
    assert s.call("GET", f"jobs/{evaluation}:metrics?type=vector").json["events"] == []


def test_curves_span_every_run_and_long_ones_are_downsampled(login, worker, store):
    s = login()
    worker()
    job_id = train(s, epochs=6, pace=0.6)
    until_status(s, job_id, "Running")
    wait_for(
        lambda: (s.call("GET", f"jobs/{job_id}").json["job_details"].get("epoch") or 0) >= 2,
        60,
        "two epochs",
    )
    assert s.call("POST", f"jobs/{job_id}:pause", json={"graceful": True}).status_code == 200
    until_status(s, job_id, "Paused")
    assert s.call("POST", f"jobs/{job_id}:resume", json={}).status_code == 200
    until_status(s, job_id, "Done")
    curve = s.call("GET", f"jobs/{job_id}:metrics?metric=loss&variant=train").json
    points = curve["metrics"]["loss"]["train"]
    assert points["x"] == sorted(points["x"]) and points["x"][-1] == 6
    assert set(points["run"]) == {1, 2}
    stats = s.call("GET", f"jobs/{job_id}").json["last_metrics"]["loss"]["train"]
    assert stats["count"] == len(points["x"])

    small = s.call("GET", f"jobs/{job_id}:metrics?metric=loss&variant=train&max_points=4").json
    kept = small["metrics"]["loss"]["train"]
    assert len(kept["x"]) <= 4 and kept["x"][0] == points["x"][0]
    assert kept["x"][-1] == points["x"][-1]
    assert max(kept["y"]) == max(points["y"]) and min(kept["y"]) == min(points["y"])
    assert_error(s.call("GET", f"jobs/{job_id}:metrics?max_points=1"), 400)
    assert_error(s.call("GET", f"jobs/{job_id}:metrics?type=histogram"), 400)
    other = login("globex")
    assert_error(other.call("GET", f"jobs/{job_id}:metrics"), 404)
