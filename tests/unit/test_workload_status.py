"""The status-event writer: seq numbering, torn lines, strict JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jobyard.workloads.status import StatusWriter


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_seq_starts_at_one_and_parent_dirs_are_created(tmp_path):
    path = tmp_path / "a" / "b" / "status.jsonl"
    writer = StatusWriter(path)
    writer.status("STARTED", "go")
    writer.scalar("loss", "train", 1, np.float64(0.5), message="loss/train")
    events = _lines(path)
    assert [e["seq"] for e in events] == [1, 2]
    assert events[0]["type"] == "status" and events[0]["status"] == "STARTED"
    assert events[1] == {
        "seq": 2,
        "ts": events[1]["ts"],
        "type": "scalar",
        "message": "loss/train",
        "metric": "loss",
        "variant": "train",
        "iteration": 1,
        "value": 0.5,
    }
    assert isinstance(events[0]["ts"], float)


def test_seq_continues_after_existing_lines(tmp_path):
    path = tmp_path / "status.jsonl"
    path.write_text('{"seq": 1}\n{"seq": 2}\n{"seq": 3, "torn')
    writer = StatusWriter(path)
    event = writer.status("RUNNING", "again")
    assert event["seq"] == 4
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[3])["seq"] == 4


def test_non_finite_values_are_written_as_null(tmp_path):
    writer = StatusWriter(tmp_path / "s.jsonl")
    writer.status("RUNNING", "x", kpi={"val_loss": float("nan"), "acc": np.float32(0.5)})
    assert _lines(tmp_path / "s.jsonl")[0]["kpi"] == {"val_loss": None, "acc": 0.5}


def test_unknown_status_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown status"):
        StatusWriter(tmp_path / "s.jsonl").status("DONE", "x")
