"""JY_PARENT_CHECKPOINT: derived actions load exactly the checkpoint jobyard chose."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobyard.workloads import results, specs
from jobyard.workloads.context import StopFlag, UsageError, context_from_env
from jobyard.workloads.status import StatusWriter
from tests.unit.workload_runs import Runner


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runner:
    return Runner(tmp_path, monkeypatch)


@pytest.fixture
def parent(run: Runner) -> Path:
    spec = specs.default_spec("train")
    spec["train"].update(num_epochs=3, retain_checkpoints_for_resume=True)
    code, events, parent_dir = run("train", spec)
    assert code == 0, events[-1]
    return parent_dir


def test_chosen_checkpoint_wins_over_best_and_latest(tmp_path):
    for name in (results.BEST, results.LATEST, "chosen.npz"):
        (tmp_path / name).write_bytes(b"")
    assert results.parent_model(tmp_path, tmp_path / "chosen.npz") == tmp_path / "chosen.npz"
    assert results.parent_model(tmp_path, None) == tmp_path / results.BEST
    assert results.parent_model(None, tmp_path / "chosen.npz") == tmp_path / "chosen.npz"
    with pytest.raises(FileNotFoundError, match="JY_PARENT_CHECKPOINT=.*gone.npz: no such file"):
        results.parent_model(tmp_path, tmp_path / "gone.npz")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "JY_JOB_ID": "j",
        "JY_RUN": "1",
        "JY_ACTION": "evaluate",
        "JY_SPECS_FILE": str(tmp_path / "spec.json"),
        "JY_RESULTS_DIR": str(tmp_path / "r"),
        **extra,
    }


def test_the_context_reads_an_absolute_checkpoint_path_only(tmp_path):
    status, stop = StatusWriter(tmp_path / "s.jsonl"), StopFlag()
    chosen = tmp_path / "p" / "checkpoints" / "epoch_002.npz"
    ctx = context_from_env(_env(tmp_path, JY_PARENT_CHECKPOINT=str(chosen)), status, stop)
    assert ctx.parent_checkpoint == chosen
    assert context_from_env(_env(tmp_path), status, stop).parent_checkpoint is None
    with pytest.raises(UsageError, match="not an absolute path"):
        context_from_env(_env(tmp_path, JY_PARENT_CHECKPOINT="checkpoints/x.npz"), status, stop)


def test_evaluate_loads_the_chosen_epoch(run, parent):
    chosen = parent / "checkpoints" / "epoch_001.npz"
    spec = specs.default_spec("evaluate")
    env = {"JY_PARENT_RESULTS_DIR": str(parent), "JY_PARENT_CHECKPOINT": str(chosen)}
    code, events, out = run("evaluate", spec, **env)
    assert code == 0, events[-1]
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["model"] == str(chosen) and evaluation["model_epoch"] == 1
    code, _, out = run("evaluate", spec, JY_PARENT_RESULTS_DIR=str(parent))
    assert json.loads((out / "evaluation.json").read_text())["model"] == str(parent / results.BEST)


def test_a_missing_chosen_checkpoint_fails_clearly(run, parent, tmp_path):
    gone = tmp_path / "gone.npz"
    env = {"JY_PARENT_RESULTS_DIR": str(parent), "JY_PARENT_CHECKPOINT": str(gone)}
    code, events, _ = run("export", specs.default_spec("export"), **env)
    assert code == 1
    assert events[-1]["status"] == "FAILURE"
    assert f"JY_PARENT_CHECKPOINT={gone}: no such file" in events[-1]["message"]
    relative = {"JY_PARENT_RESULTS_DIR": str(parent), "JY_PARENT_CHECKPOINT": "model_best.npz"}
    code, events, _ = run("export", specs.default_spec("export"), **relative)
    assert code == 2 and "not an absolute path" in events[-1]["message"]
