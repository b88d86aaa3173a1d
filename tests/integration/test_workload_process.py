"""The reference workload as a backend runs it: a real subprocess driven by JY_* variables."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jobyard.workloads import classifier, data, specs
from jobyard.workloads.model import MLP

ROOT = Path(__file__).parents[2]


class Run:
    """One workload process: its exit code, output and status events."""

    def __init__(self, returncode: int, stdout: str, stderr: str, status_file: Path) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.status_file = status_file

    @property
    def events(self) -> list[dict[str, Any]]:
        return read_events(self.status_file)


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def epoch_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("status") == "RUNNING" and "epoch" in e]


def workload_env(
    tmp: Path,
    action: str,
    spec: Any,
    results: Path,
    status_file: Path,
    *,
    run: int = 1,
    parent: Path | None = None,
) -> dict[str, str]:
    spec_file = tmp / f"spec-{action}-{run}-{time.monotonic_ns()}.json"
    spec_file.write_text(json.dumps(spec))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(
        JY_JOB_ID=f"job-{action}",
        JY_RUN=str(run),
        JY_ACTION=action,
        JY_SPECS_FILE=str(spec_file),
        JY_RESULTS_DIR=str(results),
        JY_STATUS_FILE=str(status_file),
    )
    env.pop("JY_PARENT_RESULTS_DIR", None)
    if parent is not None:
        env["JY_PARENT_RESULTS_DIR"] = str(parent)
    return env


def start(tmp: Path, action: str, spec: Any, results: Path, status_file: Path, **kw: Any) -> Any:
    env = workload_env(tmp, action, spec, results, status_file, **kw)
    return subprocess.Popen(
        [sys.executable, "-m", "jobyard.workloads.classifier"],
        env=env,
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(tmp: Path, action: str, spec: Any, results: Path, status_file: Path, **kw: Any) -> Run:
    proc = start(tmp, action, spec, results, status_file, **kw)
    stdout, stderr = proc.communicate(timeout=60)
    return Run(proc.returncode, stdout, stderr, status_file)


def train_spec(**train: Any) -> dict[str, Any]:
    spec = specs.default_spec("train")
    spec["train"].update(train)
    return spec


def checkpoint_names(results: Path) -> list[str]:
    return sorted(p.name for p in (results / "checkpoints").glob("epoch_*.npz"))


def assert_contiguous_seq(events: list[dict[str, Any]]) -> None:
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run]:
    tmp = tmp_path_factory.mktemp("trained")
    result = run(tmp, "train", specs.default_spec("train"), tmp / "results", tmp / "s" / "1.jsonl")
    assert result.returncode == 0, result.stderr
    return tmp / "results", result


def test_default_train_reaches_success_with_one_event_per_epoch(trained):
    results, result = trained
    events = result.events
    assert_contiguous_seq(events)
    assert events[0]["status"] == "STARTED"
    assert events[-1]["status"] == "SUCCESS"
    per_epoch = epoch_events(events)
    assert [e["epoch"] for e in per_epoch] == list(range(1, 11))
    for event in per_epoch:
        assert event["max_epoch"] == 10
        assert event["time_per_epoch"] > 0 and event["eta"] >= 0
        assert set(event["graphical"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert event["kpi"]["val_accuracy"] == event["graphical"]["val_accuracy"]
        assert event["checkpoint"] == f"checkpoints/epoch_{event['epoch']:03d}.npz"
    assert per_epoch[-1]["eta"] == 0
    assert per_epoch[-1]["graphical"]["loss"] < per_epoch[0]["graphical"]["loss"]
    scalars = [e for e in events if e["type"] == "scalar"]
    assert len(scalars) == 40
    assert {(e["metric"], e["variant"]) for e in scalars} == {
        ("loss", "train"),
        ("accuracy", "train"),
        ("loss", "val"),
        ("accuracy", "val"),
    }
    assert sorted({e["iteration"] for e in scalars}) == list(range(1, 11))
    final = events[-1]
    assert final["epoch"] == final["max_epoch"] == 10
    assert final["kpi"]["best_val_accuracy"] > 0.9
    assert final["kpi"]["val_accuracy"] > 0.9
    assert "epoch 10/10" in result.stdout and "val_acc=" in result.stdout
    assert (results / "model_best.npz").is_file() and (results / "model_latest.npz").is_file()
    assert checkpoint_names(results) == ["epoch_010.npz"]
    summary = json.loads((results / "train_summary.json").read_text())
    assert summary["status"] == "SUCCESS" and summary["epochs_completed"] == 10
    assert len(summary["history"]) == 10
    best, best_meta = MLP.load(results / "model_best.npz")
    split = data.load_split(0.2)
    assert best.evaluate(split.x_val, split.y_val)[1] == pytest.approx(
        final["kpi"]["best_val_accuracy"]
    )
    assert best_meta["epoch"] == final["kpi"]["best_epoch"]


@pytest.mark.parametrize(
    ("retain", "interval", "epochs", "expected"),
    [
        (True, 1, 4, ["epoch_001.npz", "epoch_002.npz", "epoch_003.npz", "epoch_004.npz"]),
        (False, 1, 4, ["epoch_004.npz"]),
        (True, 2, 5, ["epoch_002.npz", "epoch_004.npz", "epoch_005.npz"]),
    ],
)
def test_checkpoint_retention_and_interval(tmp_path, retain, interval, epochs, expected):
    spec = train_spec(
        num_epochs=epochs, retain_checkpoints_for_resume=retain, checkpoint_interval=interval
    )
    result = run(tmp_path, "train", spec, tmp_path / "r", tmp_path / "s.jsonl")
    assert result.returncode == 0, result.stderr
    assert checkpoint_names(tmp_path / "r") == expected
    written = [e.get("checkpoint") for e in epoch_events(result.events)]
    due = [n for n in range(1, epochs + 1) if n % interval == 0 or n == epochs]
    assert [w for w in written if w] == [f"checkpoints/epoch_{n:03d}.npz" for n in due]


def test_sigterm_pauses_and_the_next_run_resumes_where_it_stopped(tmp_path):
    results = tmp_path / "results"
    spec = train_spec(num_epochs=20, min_epoch_seconds=0.3)
    first = tmp_path / "status" / "run1.jsonl"
    proc = start(tmp_path, "train", spec, results, first)
    deadline = time.monotonic() + 30
    while len(epoch_events(read_events(first))) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no epoch events"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 75, stderr

    events = read_events(first)
    assert_contiguous_seq(events)
    paused = events[-1]
    assert paused["status"] == "PAUSED"
    k = paused["epoch"]
    assert 2 <= k < 20
    assert [e["epoch"] for e in epoch_events(events)] == list(range(1, k + 1))
    assert paused["checkpoint"] == f"checkpoints/epoch_{k:03d}.npz"
    assert (results / paused["checkpoint"]).is_file()
    assert MLP.load(results / "model_latest.npz")[1]["epoch"] == k
    assert "paused" in stdout

    second = tmp_path / "status" / "run2.jsonl"
    resumed = run(tmp_path, "train", spec, results, second, run=2)
    assert resumed.returncode == 0, resumed.stderr
    events2 = resumed.events
    assert_contiguous_seq(events2)
    notice = next(e for e in events2 if e["status"] == "RUNNING")
    assert notice["message"].startswith(f"resuming from epoch {k}")
    assert [e["epoch"] for e in epoch_events(events2)] == list(range(k + 1, 21))
    assert events2[-1]["status"] == "SUCCESS" and events2[-1]["epoch"] == 20
    assert f"resuming from epoch {k}" in resumed.stdout

    # Pause + resume trains exactly the model an uninterrupted run trains.
    reference = run(
        tmp_path, "train", train_spec(num_epochs=20), tmp_path / "ref", tmp_path / "ref.jsonl"
    )
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    expected = [[e["graphical"][m] for m in keys] for e in epoch_events(reference.events)]
    got = [[e["graphical"][m] for m in keys] for e in epoch_events(events + events2)]
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=1e-9)
    summary = json.loads((results / "train_summary.json").read_text())
    assert summary["run"] == 2 and len(summary["history"]) == 20


def test_early_stop_ends_successfully_after_that_epoch(tmp_path):
    results, status_file = tmp_path / "r", tmp_path / "s.jsonl"
    spec = train_spec(early_stop_epoch=3)
    result = run(tmp_path, "train", spec, results, status_file)
    assert result.returncode == 0, result.stderr
    assert [e["epoch"] for e in epoch_events(result.events)] == [1, 2, 3]
    final = result.events[-1]
    assert final["status"] == "SUCCESS" and "early stop" in final["message"]
    assert final["epoch"] == 3 and final["max_epoch"] == 10
    assert MLP.load(results / "model_latest.npz")[1]["epoch"] == 3
    assert (results / "model_best.npz").is_file()
    assert json.loads((results / "train_summary.json").read_text())["early_stopped"] is True

    # A requeued run appends to the same status file: seq continues, nothing is retrained.
    before = len(result.events)
    again = run(tmp_path, "train", spec, results, status_file, run=2)
    assert again.returncode == 0, again.stderr
    events = again.events
    assert_contiguous_seq(events)
    new = events[before:]
    assert new[0]["seq"] == before + 1 and new[0]["status"] == "STARTED"
    assert epoch_events(new) == []
    assert new[-1]["status"] == "SUCCESS" and new[-1]["epoch"] == 3


def test_evaluate_uses_the_parent_model(tmp_path, trained):
    parent, train_run = trained
    spec = specs.default_spec("evaluate")
    result = run(tmp_path, "evaluate", spec, tmp_path / "r", tmp_path / "s.jsonl", parent=parent)
    assert result.returncode == 0, result.stderr
    final = result.events[-1]
    assert final["status"] == "SUCCESS"
    evaluation = json.loads((tmp_path / "r" / "evaluation.json").read_text())
    assert evaluation["accuracy"] == final["kpi"]["accuracy"] > 0.9
    assert evaluation["accuracy"] == pytest.approx(train_run.events[-1]["kpi"]["best_val_accuracy"])
    assert evaluation["loss"] == pytest.approx(final["kpi"]["loss"])
    assert evaluation["num_samples"] == len(data.load_split(0.2).y_val)
    assert set(evaluation["per_class_accuracy"]) == {str(c) for c in range(10)}
    assert sum(map(sum, evaluation["confusion_matrix"])) == evaluation["num_samples"]


def test_export_json_is_portable_and_matches_the_model(tmp_path, trained):
    parent, _ = trained
    spec = specs.default_spec("export")
    result = run(tmp_path, "export", spec, tmp_path / "r", tmp_path / "s.jsonl", parent=parent)
    assert result.returncode == 0, result.stderr
    assert result.events[-1]["status"] == "SUCCESS"
    exported = tmp_path / "r" / "model.json"
    summary = json.loads((tmp_path / "r" / "export_summary.json").read_text())
    assert summary["sha256"] == hashlib.sha256(exported.read_bytes()).hexdigest()
    doc = json.loads(exported.read_text())
    w = {k: np.array(v) for k, v in doc["weights"].items()}
    raw = data._raw()[0][:50]  # raw 0..16 pixels, as a user would have them
    x = raw * doc["normalisation"]["scale"]
    logits = np.maximum(x @ w["w1"] + w["b1"], 0) @ w["w2"] + w["b2"]
    model, _ = MLP.load(parent / "model_best.npz")
    assert (logits.argmax(axis=1) == model.predict(data.normalise(raw))).all()
    assert doc["classes"] == list(range(10))


def test_export_npz_loads_without_pickles(tmp_path, trained):
    parent, _ = trained
    spec = {"export": {"format": "npz"}}
    result = run(tmp_path, "export", spec, tmp_path / "r", tmp_path / "s.jsonl", parent=parent)
    assert result.returncode == 0, result.stderr
    with np.load(tmp_path / "r" / "model.npz", allow_pickle=False) as arrays:
        assert arrays["w1"].shape == (64, 64) and "v_w1" not in arrays.files
    summary = json.loads((tmp_path / "r" / "export_summary.json").read_text())
    assert summary["file"] == "model.npz" and summary["format"] == "npz"


def test_inference_writes_predictions(tmp_path, trained):
    parent, _ = trained
    spec = {"inference": {"batch_size": 16, "num_samples": 40}}
    result = run(tmp_path, "inference", spec, tmp_path / "r", tmp_path / "s.jsonl", parent=parent)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "r" / "predictions.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 40
    assert all(set(r) == {"index", "predicted", "label", "confidence"} for r in rows)
    _, labels = data.load_digits()
    assert all(labels[r["index"]] == r["label"] for r in rows)
    assert all(0.1 <= r["confidence"] <= 1.0 for r in rows)
    accuracy = sum(r["predicted"] == r["label"] for r in rows) / 40
    summary = json.loads((tmp_path / "r" / "inference_summary.json").read_text())
    assert summary["accuracy"] == pytest.approx(accuracy) and accuracy > 0.85
    assert result.events[-1]["kpi"]["accuracy"] == pytest.approx(accuracy)


def test_missing_parent_model_fails_with_a_clear_message(tmp_path):
    spec = specs.default_spec("evaluate")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run(tmp_path, "evaluate", spec, tmp_path / "r", tmp_path / "s.jsonl", parent=empty)
    assert result.returncode == 1
    final = result.events[-1]
    assert final["status"] == "FAILURE"
    assert "model_best.npz" in final["message"] and str(empty) in final["message"]
    no_parent = run(
        tmp_path,
        "inference",
        {"inference": {"batch_size": 1, "num_samples": 1}},
        tmp_path / "r2",
        tmp_path / "s2.jsonl",
    )
    assert no_parent.returncode == 1
    assert "JY_PARENT_RESULTS_DIR" in no_parent.events[-1]["message"]


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        ({"num_epochs": "ten"}, "train.num_epochs"),
        ({"bogus": 1}, "train.bogus"),
        ({"learning_rate": -1}, "train.learning_rate"),
    ],
)
def test_bad_spec_exits_2_with_a_failure_event(tmp_path, edit, path):
    spec = train_spec(**edit)
    result = run(tmp_path, "train", spec, tmp_path / "r", tmp_path / "s.jsonl")
    assert result.returncode == 2
    final = result.events[-1]
    assert final["status"] == "FAILURE" and path in final["message"]
    assert [e.split(":")[0] for e in final["errors"]] == [path]
    assert path in result.stderr
    assert not (tmp_path / "r" / "model_latest.npz").exists()


def test_unreadable_spec_file_exits_2(tmp_path):
    env = workload_env(tmp_path, "train", {}, tmp_path / "r", tmp_path / "s.jsonl")
    Path(env["JY_SPECS_FILE"]).write_text("{not json")
    proc = subprocess.run(
        [sys.executable, "-m", "jobyard.workloads.classifier"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert read_events(tmp_path / "s.jsonl")[-1]["status"] == "FAILURE"


def _sigterm_while_loading_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deliver a real SIGTERM to this process as soon as an action loads its data."""
    real = data.load_split

    def load_split(val_split: float) -> data.Split:
        os.kill(os.getpid(), signal.SIGTERM)
        return real(val_split)

    monkeypatch.setattr(data, "load_split", load_split)


def _in_process_env(monkeypatch, tmp_path, action, spec, results, status, **kw):
    env = workload_env(tmp_path, action, spec, results, status, **kw)
    for name in [n for n in os.environ if n.startswith("JY_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("JY_"):
            monkeypatch.setenv(name, value)


def test_sigterm_during_evaluate_pauses_with_exit_75(tmp_path, trained, monkeypatch):
    parent, _ = trained
    status = tmp_path / "s.jsonl"
    spec = specs.default_spec("evaluate")
    _in_process_env(monkeypatch, tmp_path, "evaluate", spec, tmp_path / "r", status, parent=parent)
    _sigterm_while_loading_data(monkeypatch)
    assert classifier.main([]) == 75
    assert read_events(status)[-1]["status"] == "PAUSED"
    assert not (tmp_path / "r" / "evaluation.json").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_sigterm_before_the_first_batch_checkpoints_epoch_zero(tmp_path, monkeypatch):
    status, results = tmp_path / "s.jsonl", tmp_path / "r"
    _in_process_env(monkeypatch, tmp_path, "train", train_spec(num_epochs=2), results, status)
    _sigterm_while_loading_data(monkeypatch)
    assert classifier.main([]) == 75
    paused = read_events(status)[-1]
    assert paused["status"] == "PAUSED" and paused["epoch"] == 0
    assert paused["checkpoint"] == "checkpoints/epoch_000.npz"
    monkeypatch.undo()
    resumed = run(tmp_path, "train", train_spec(num_epochs=2), results, status, run=2)
    assert resumed.returncode == 0, resumed.stderr
    assert [e["epoch"] for e in epoch_events(resumed.events)] == [1, 2]
    assert_contiguous_seq(resumed.events)


def test_resume_with_a_different_architecture_fails_with_exit_1(tmp_path):
    results, status_file = tmp_path / "r", tmp_path / "s.jsonl"
    first = run(tmp_path, "train", train_spec(num_epochs=1), results, status_file)
    assert first.returncode == 0, first.stderr
    spec = train_spec(num_epochs=3)
    spec["model"]["hidden_size"] = 32
    again = run(tmp_path, "train", spec, results, status_file, run=2)
    assert again.returncode == 1
    final = again.events[-1]
    assert final["status"] == "FAILURE"
    assert "cannot resume" in final["message"] and "hidden_size" in final["message"]
    assert "cannot resume" in again.stderr
