"""The pure half of the metrics API: ``last_metrics`` folded event by event equals the
summary of the whole curve, however the events are batched; downsampling keeps the ends
and every bucket's extremes; names that are not field names are made safe."""

from __future__ import annotations

import random

import pytest

from jobyard.schemas import metrics


def scalar(metric, variant, iteration, value, run=1, seq=None):
    return {
        "type": "scalar",
        "metric": metric,
        "variant": variant,
        "iteration": iteration,
        "value": value,
        "run": run,
        "seq": seq or iteration,
        "ts": 1000.0 + iteration,
    }


@pytest.mark.parametrize("batch", [1, 3, 7, 100])
def test_last_metrics_folded_in_batches_is_the_summary_of_the_whole_curve(batch):
    rng = random.Random(batch)
    values = [rng.uniform(-1, 1) for _ in range(50)]
    events = [scalar("loss", "train", i + 1, v) for i, v in enumerate(values)]
    events.insert(10, {"type": "scalar", "metric": "loss", "variant": "train", "value": "nan"})
    events.insert(20, {"type": "status", "status": "RUNNING"})
    state: dict = {}
    for start in range(0, len(events), batch):
        for metric, variants in metrics.fold_last_metrics(
            state, events[start : start + batch]
        ).items():
            state.setdefault(metric, {}).update(variants)
    stats = state["loss"]["train"]
    assert stats["count"] == 50 and stats["first"] == values[0] and stats["last"] == values[-1]
    assert stats["min"] == min(values) and stats["min_iteration"] == values.index(min(values)) + 1
    assert stats["max"] == max(values) and stats["max_iteration"] == values.index(max(values)) + 1
    assert stats["mean"] == pytest.approx(sum(values) / 50)


def test_names_become_safe_field_names_and_a_missing_variant_is_the_metric():
    folded = metrics.fold_last_metrics({}, [scalar("val.acc$", None, 1, 0.5)])
    assert list(folded) == ["val_acc_"] and list(folded["val_acc_"]) == ["val_acc_"]
    assert folded["val_acc_"]["val_acc_"]["count"] == 1
    assert metrics.key("") == "_"


def test_downsampling_keeps_the_ends_and_each_buckets_extremes():
    rng = random.Random(3)
    points = [(float(i), rng.random(), None) for i in range(1000)]
    points[437] = (437.0, 5.0, None)  # a spike
    points[612] = (612.0, -5.0, None)
    kept = metrics.downsample(points, 100)
    assert len(kept) <= 100 and kept[0] == points[0] and kept[-1] == points[-1]
    assert (437.0, 5.0, None) in kept and (612.0, -5.0, None) in kept
    assert [p[0] for p in kept] == sorted(p[0] for p in kept)
    assert metrics.downsample(points[:50], 100) == points[:50]


def _doc(metric, variant, points):
    return {
        "metric": metric,
        "variant": variant,
        "x": [p[0] for p in points],
        "y": [p[1] for p in points],
        "t": [None] * len(points),
        "run": [p[2] for p in points],
    }


def test_curves_follow_runs_and_filter_by_tao_names():
    docs = [
        _doc("accuracy", "val", [(i, i / 10, 1 + (i > 3)) for i in range(1, 7)]),
        _doc("loss", "train", [(i, 1 / i, 1) for i in range(1, 7)]),
    ]
    found = metrics.curves(docs, 1000)
    assert set(found) == {"accuracy", "loss"}
    assert found["accuracy"]["val"]["run"] == [1, 1, 1, 2, 2, 2]
    assert metrics.curves(docs, 1000, metric="val_accuracy") == {"accuracy": found["accuracy"]}
    assert metrics.curves(docs, 1000, metric="loss", variant="val") == {}
    stats = {"accuracy": {"val": {"max": 1}, "train": {"max": 2}}}
    assert metrics.matching(stats, "val_accuracy", None) == {"val": {"max": 1}}
    assert metrics.matching(stats, "accuracy", None) == stats["accuracy"]


def test_plot_vector_and_log_events_keep_their_payloads():
    events = [
        {"type": "plot", "metric": "cm", "variant": "val", "iteration": 3, "plot_str": "{}"},
        {"type": "vector", "metric": "hist", "variant": "w", "iteration": 3, "values": [1, 2]},
        {"type": "log", "level": "warning", "msg": "lr too high", "iteration": 4},
        {"type": "scalar", "metric": "loss", "variant": "val", "iteration": 3, "value": 1.0},
    ]
    (plot,) = metrics.attached(events, "plot", None)
    assert plot["plot_str"] == "{}" and plot["metric"] == "cm"
    assert metrics.attached(events, "vector", "hist")[0]["values"] == [1, 2]
    (log,) = metrics.attached(events, "log", None)
    assert (log["level"], log["msg"], log["iteration"]) == ("warning", "lr too high", 4)
    assert metrics.attached(events, "plot", "other") == []
