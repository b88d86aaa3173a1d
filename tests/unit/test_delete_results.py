"""Deleting result files of local runs (process and Kubernetes backends): only files
inside the run's results directory, missing ones skipped, a count of what went."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobyard.backends.base import Handle
from jobyard.backends.errors import ResultNotFound
from jobyard.backends.results import delete_local
from jobyard.schemas.checkpoints import model_files


def test_only_named_files_inside_the_results_go(tmp_path: Path) -> None:
    results = tmp_path / "results"
    (results / "checkpoints").mkdir(parents=True)
    for name in ("model_latest.npz", "checkpoints/epoch_003.npz", "train_summary.json"):
        (results / name).write_text("x")
    outside = tmp_path / "secret.npz"
    outside.write_text("keep")
    handle = Handle("process", "jy-x-r1", {"results_dir": str(results)})
    names = [p.relative_to(results).as_posix() for p in results.rglob("*") if p.is_file()]
    doomed = model_files(names)
    assert sorted(doomed) == ["checkpoints/epoch_003.npz", "model_latest.npz"]
    with pytest.raises(ResultNotFound, match="not a file inside"):
        delete_local([(handle, n) for n in [*doomed, "../secret.npz"]])
    assert outside.read_text() == "keep" and (results / "model_latest.npz").exists()
    assert delete_local([(handle, n) for n in [*doomed, "gone.npz"]]) == 2
    assert sorted(p.name for p in results.rglob("*") if p.is_file()) == ["train_summary.json"]
