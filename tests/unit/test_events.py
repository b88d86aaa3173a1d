"""Parsing status lines and folding them into job_details."""

from __future__ import annotations

import json

from jobyard.schemas.events import event_text, graphical, parse_status_lines, summarize


def lines(*events) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def test_a_trailing_partial_line_is_left_for_the_next_read():
    data = lines({"seq": 1, "status": "STARTED"}) + b'{"seq": 2, "sta'
    parsed = parse_status_lines(data, 0)
    assert [e["seq"] for e in parsed.events] == [1]
    assert parsed.consumed == data.index(b"\n") + 1 and parsed.lines == 1


def test_events_without_seq_get_their_line_number_and_garbage_is_kept_visible():
    data = lines({"status": "STARTED"}) + b"not json\n" + lines({"seq": "x"})
    parsed = parse_status_lines(data, 10)
    assert [e["seq"] for e in parsed.events] == [11, 12, 13]
    assert parsed.events[1]["type"] == "invalid" and "not json" in parsed.events[1]["message"]


def test_rereading_the_same_bytes_gives_the_same_keys():
    data = lines({"status": "A"}, {"status": "B"})
    assert parse_status_lines(data, 3).events == parse_status_lines(data, 3).events


def test_summary_takes_the_latest_progress_and_collects_series():
    epoch = {
        "type": "status",
        "status": "RUNNING",
        "message": "epoch",
        "max_epoch": 3,
        "time_per_epoch": 3725.5,
        "eta": 12,
        "kpi": {"val_accuracy": 0.9, "bad": "x"},
    }
    events = [
        {**epoch, "epoch": 1, "graphical": {"loss": 0.5, "val.acc": 0.8}},
        {**epoch, "epoch": 2, "graphical": {"loss": 0.4, "val.acc": 0.85}},
        {"type": "scalar", "metric": "loss", "value": 1},
    ]
    summary = summarize(events)
    assert summary.details["epoch"] == 2 and summary.details["cur_epoch"] == 2
    assert summary.details["time_per_epoch"] == "1:02:05.50" and summary.details["eta"] == "0:00:12"
    assert summary.details["kpi"] == [{"metric": "val_accuracy", "value": 0.9}]
    assert summary.series == {"loss": [[1, 0.5], [2, 0.4]], "val_acc": [[1, 0.8], [2, 0.85]]}


def test_graphical_follows_seed_002():
    (entry,) = graphical({"loss": {"x": [1, 2], "y": [0.5, 0.4]}})
    assert entry == {
        "metric": "loss",
        "x_min": 1,
        "x_max": 2,
        "y_min": 0.4,
        "y_max": 0.5,
        "values": [0.5, 0.4],
        "units": "epoch",
    }


def test_event_text_matches_taos_lines():
    text = event_text(
        {"status": "RUNNING", "epoch": 3, "max_epoch": 10, "graphical": {"loss": 0.621}}
    )
    assert text == "Epoch 3/10 - loss: 0.621"
    assert event_text({"status": "SUCCESS", "message": "done"}) == "[SUCCESS] done"
