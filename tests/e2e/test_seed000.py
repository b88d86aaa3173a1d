"""Seed 000's whole walkthrough, its requests as the guide writes them: a COCO dataset,
the ``kind: dataset`` convert job, train, evaluate, inference, export, then
``gen_trt_engine`` from the export job, against ``jobyard up`` with the TAO stand-in's
entries imported (tests/tao)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import readme_block, run_bash
from tests.tao.catalog import entries

pytestmark = pytest.mark.e2e
HERE = Path(__file__).parent


def coco_tree(root: Path, images: int = 6) -> None:
    (root / "images").mkdir(parents=True)
    coco: dict[str, list[dict[str, object]]] = {"images": [], "annotations": [], "categories": []}
    coco["categories"] = [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}]
    for i in range(images):
        name = f"{i:04d}.jpg"
        (root / "images" / name).write_bytes(b"\xff\xd8 a picture " + bytes([i]))
        coco["images"].append({"id": i, "file_name": name, "width": 64, "height": 48})
        coco["annotations"].append(
            {"id": i, "image_id": i, "category_id": 1 + i % 2, "bbox": [1, 2, 10, 12]}
        )
    (root / "annotations.json").write_text(json.dumps(coco))


def test_seed_000_runs_unchanged_from_dataset_to_trt_engine(jobyard_up, tao_standin, tmp_path):
    up = jobyard_up
    coco_tree(up.data_dir / "workspaces" / "demo" / "my_workspace" / "coco")
    catalog = tmp_path / "tao.yaml"
    catalog.write_text(yaml.safe_dump({"base_experiments": entries(tao_standin)}))
    imported = subprocess.run(
        [sys.executable, "-m", "jobyard.cli", "admin", "workloads", "import", str(catalog)],
        env=up.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert imported.returncode == 0, imported.stderr
    script = readme_block("walkthrough") + (HERE / "seed000_chain.sh").read_text()
    out = run_bash(script, up.env(), timeout=300, cwd=tmp_path)
    for step in ("convert", "train", "evaluate", "inference", "export", "gen_trt_engine"):
        assert any(line.startswith(f"{step}: Done ") for line in out.splitlines()), out[-3000:]
    checks = {}
    for line in out.splitlines():
        if line.startswith("{") and line.endswith("}") and len(json.loads(line)) == 1:
            checks.update(json.loads(line))
    assert checks["convert"]["network_arch"] == "dataset"  # the dataset's type chose it
    assert checks["convert"]["output_dataset_id"]
    assert {"val_mAP", "train_loss"} <= set(checks["train"])
    assert checks["evaluate"] == "train/model_epoch_009.pth"  # TAO's default: the latest
    assert "gen_trt_engine/model.engine" in checks["gen_trt_engine"]
    assert any(f.startswith("inference/labels/") for f in checks["inference"])
    train_id = out.split("ids: ")[1].split()[1]
    best = checks["best"]
    assert best.startswith(f"{train_id}/train/model_epoch_") and best.endswith(".pth")
