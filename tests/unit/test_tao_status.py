"""TAO's status.json lines, as its status logger writes them, read as jobyard events."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from jobyard.schemas.events import event_text, parse_status_lines, summarize
from jobyard.schemas.protocols import parse_lines
from jobyard.schemas.tao_status import duration, parse_tao_lines, timestamp

# json.dumps of the logger's dict: the caller's keys first, then date, time, status,
# verbosity, message, categorical, graphical, kpi (api_logging.BaseLogger.write)
STARTED = {
    "date": "3/7/2025",
    "time": "9:5:3",
    "status": "STARTED",
    "verbosity": "INFO",
    "message": "Starting RT-DETR train.",
}
EVAL = {
    "date": "3/7/2025",
    "time": "9:6:10",
    "status": "RUNNING",
    "verbosity": "INFO",
    "message": "Eval metrics generated.",
    "kpi": {"val_mAP": "0.41234", "val_mAP50": "0.6", "val_loss": 1.25},
}
EPOCH = {
    "epoch": 0,
    "step": 5,
    "max_epoch": 2,
    "max_step": 15,
    "time_per_epoch": "0:00:12.345678",
    "time_per_step": "0:00:02.469136",
    "eta": "1 day, 2:03:04",
    "date": "3/7/2025",
    "time": "9:6:11",
    "status": "RUNNING",
    "verbosity": "INFO",
    "message": "Training loop in progress",
    "kpi": {"val_mAP": "0.41234", "val_mAP50": "0.6", "val_loss": 1.25},
}
SKIPPED = {
    "date": "3/7/2025",
    "time": "9:5:4",
    "status": "SKIPPED",
    "verbosity": "WARNING",
    "message": "module ['backbone.x'] not found. Skipped freezing",
}
FAILURE = {
    "date": "3/7/2025",
    "time": "23:59:59",
    "status": "FAILURE",
    "verbosity": "INFO",
    "message": "File system error: [Errno 2] No such file or directory: '/r/model.pth'",
}
CONVERTED = {
    "date": "12/31/2024",
    "time": "10:0:0",
    "status": "RUNNING",
    "verbosity": "INFO",
    "message": "Convert finished successfully.",
    "categorical": {"num_objects": {"person": 12, "car": "3", "bad": "x"}},
}


def tao_lines(*lines: dict) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def test_lines_map_to_status_events_with_line_numbers_as_seq():
    parsed = parse_tao_lines(tao_lines(STARTED, SKIPPED), 7)
    started, skipped = parsed.events
    assert started == {
        "seq": 8,
        "type": "status",
        "status": "STARTED",
        "verbosity": "INFO",
        "date": "3/7/2025",
        "time": "9:5:3",
        "message": "Starting RT-DETR train.",
        "ts": dt.datetime(2025, 3, 7, 9, 5, 3, tzinfo=dt.UTC).timestamp(),
    }
    assert skipped["seq"] == 9 and skipped["status"] == "SKIPPED"
    assert skipped["verbosity"] == "WARNING"
    assert parsed.lines == 2


def test_a_trailing_partial_line_is_left_and_rereading_gives_the_same_events():
    whole = tao_lines(STARTED, EPOCH)
    data = whole + json.dumps(FAILURE).encode()[:40]
    parsed = parse_tao_lines(data, 0)
    assert [e["seq"] for e in parsed.events] == [1, 2]
    assert parsed.consumed == len(whole)
    assert parse_tao_lines(data, 0) == parsed
    rest = parse_tao_lines(tao_lines(FAILURE), parsed.lines)
    assert [(e["seq"], e["status"]) for e in rest.events] == [(3, "FAILURE")]


def test_no_newline_yet_consumes_nothing():
    parsed = parse_tao_lines(json.dumps(STARTED).encode(), 4)
    assert (parsed.events, parsed.lines, parsed.consumed) == ([], 0, 0)


def test_the_epoch_line_carries_progress_in_seconds_and_string_kpi_as_numbers():
    (event,) = parse_tao_lines(tao_lines(EPOCH), 0).events
    assert (event["epoch"], event["max_epoch"], event["step"], event["max_step"]) == (0, 2, 5, 15)
    assert event["time_per_epoch"] == pytest.approx(12.345678)
    assert event["time_per_step"] == pytest.approx(2.469136)
    assert event["eta"] == 86400 + 2 * 3600 + 3 * 60 + 4
    assert event["kpi"] == {"val_mAP": 0.41234, "val_mAP50": 0.6, "val_loss": 1.25}
    assert "stats" not in event


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0:00:12.345678", 12.345678),
        ("1 day, 2:03:04", 93784),
        ("3 days, 0:00:00.500000", 3 * 86400 + 0.5),
        ("10:00:00", 36000),
        (7.5, 7.5),
        ("-1 day, 23:59:59", None),
        ("soon", None),
        (True, None),
        (None, None),
    ],
)
def test_durations_are_read_from_str_timedelta(text, seconds):
    assert duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_dates_and_times_are_unpadded_and_read_as_utc():
    assert (
        timestamp("12/31/2024", "23:5:9")
        == dt.datetime(2024, 12, 31, 23, 5, 9, tzinfo=dt.UTC).timestamp()
    )
    assert timestamp("13/31/2024", "1:2:3") is None
    assert timestamp("3/7/2025", None) is None


def test_garbage_and_non_objects_become_invalid_events():
    data = b"not json\n[1, 2]\n" + tao_lines(STARTED)
    events = parse_tao_lines(data, 0).events
    assert [e["type"] for e in events] == ["invalid", "invalid", "status"]
    assert "not json" in events[0]["message"]


def test_long_messages_are_cut():
    line = {**FAILURE, "message": "x" * 5000}
    (event,) = parse_tao_lines(tao_lines(line), 0).events
    assert len(event["message"]) == 2000


def test_kpi_keeps_numbers_and_moves_text_to_stats():
    line = {
        **EVAL,
        "kpi": {
            "val_mAP": "0.5",
            "nested": {"value": "0.25"},
            "count": 3,
            "diverged": "nan",
            "note": "best so far",
            "flag": True,
            "table": {"a": 1},
        },
        "graphical": {"loss": "0.7", "lr": 1e-4, "name": "x"},
    }
    (event,) = parse_tao_lines(tao_lines(line), 0).events
    assert event["kpi"] == {"val_mAP": 0.5, "nested": 0.25, "count": 3}
    assert event["stats"] == {"note": "best so far", "flag": "true"}
    assert event["graphical"] == {"loss": 0.7, "lr": 1e-4}


def test_summary_of_a_tao_run_fills_seed_002_fields():
    line = {**EPOCH, "graphical": {"loss": 0.9}, "kpi": {**EPOCH["kpi"], "mode": "coco"}}
    events = parse_tao_lines(tao_lines(STARTED, EVAL, line, CONVERTED), 0).events
    summary = summarize(events)
    details = summary.details
    assert details["epoch"] == 0 and details["max_epoch"] == 2 and details["cur_epoch"] == 0
    assert details["time_per_epoch"] == "0:00:12.34" and details["eta"] == "26:03:04"
    assert details["kpi"] == [
        {"metric": "val_mAP", "value": 0.41234},
        {"metric": "val_mAP50", "value": 0.6},
        {"metric": "val_loss", "value": 1.25},
    ]
    assert details["stats"] == [{"metric": "mode", "value": "coco"}]
    assert details["categorical"] == [
        {
            "metric": "num_objects",
            "category_wise_values": [
                {"category": "person", "value": 12},
                {"category": "car", "value": 3.0},
            ],
        }
    ]
    assert summary.series == {"loss": [[0, 0.9]]}
    # TAO's own date and time strings, as TAO's API shows them
    assert details["detailed_status"] == {
        "date": "12/31/2024",
        "time": "10:0:0",
        "message": "Convert finished successfully.",
        "status": "RUNNING",
    }


def test_a_failure_is_the_detailed_status_and_a_line_without_message_keeps_the_last():
    epoch_without_message = {k: v for k, v in EPOCH.items() if k != "message"}
    events = parse_tao_lines(tao_lines(STARTED, FAILURE, epoch_without_message), 0).events
    status = summarize(events).details["detailed_status"]
    assert status["status"] == "RUNNING" and status["message"].startswith("File system error")
    failure = summarize(events[:2]).details["detailed_status"]
    assert failure["status"] == "FAILURE" and failure["time"] == "23:59:59"


def test_event_text_reads_tao_events():
    epoch = {**EPOCH, "max_epoch": 9, "graphical": {"loss": 0.621}}
    started, epoch_event = parse_tao_lines(tao_lines(STARTED, epoch), 0).events
    assert event_text(started) == "[STARTED] Starting RT-DETR train."
    assert event_text(epoch_event) == "Epoch 0/9 - loss: 0.621"


def test_parse_lines_dispatches_on_the_status_protocol():
    data = tao_lines(STARTED)
    assert parse_lines("tao", data, 0) == parse_tao_lines(data, 0)
    assert parse_lines("jobyard", data, 0) == parse_status_lines(data, 0)
    with pytest.raises(ValueError, match="unknown status protocol"):
        parse_lines("clearml", data, 0)
