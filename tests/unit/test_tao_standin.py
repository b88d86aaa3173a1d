"""The TAO stand-in (tests/tao/standin.py) behaves as TAO's containers do: its status.json
read with the TAO parser, its checkpoints, resume, SIGTERM, failures and the catalog
entries that run it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from jobyard.schemas.events import summarize
from jobyard.schemas.tao_status import parse_tao_lines
from tests.helpers import wait_for

TAO = Path(__file__).parents[1] / "tao"
STANDIN = TAO / "standin.py"
ENV = {**os.environ, "TZ": "UTC"}
KEY = "tlt-s3cr3t-key"


@cache
def python() -> str:
    """Debian's python3 where it has PyYAML (the SLURM test node's), else ours."""
    system = "/usr/bin/python3"
    if os.access(system, os.X_OK):
        found = subprocess.run([system, "-c", "import yaml"], capture_output=True)
        if found.returncode == 0:
            return system
    return sys.executable


def command(root: Path, network: str, action: str, spec: dict[str, Any], *overrides: str):
    spec_file = root / f"{network}-{action}.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    results = f"results_dir={root / 'results'}"
    return [python(), str(STANDIN), network, action, "-e", str(spec_file), results, *overrides]


def run(root: Path, network: str, action: str, spec: dict[str, Any], *overrides: str):
    return subprocess.run(
        command(root, network, action, spec, *overrides),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=30,
        env=ENV,
    )


def events(root: Path, action: str) -> list[dict[str, Any]]:
    parsed = parse_tao_lines((root / "results" / action / "status.json").read_bytes(), 0)
    assert all(e["type"] == "status" for e in parsed.events)
    return parsed.events


def messages(found: list[dict[str, Any]]) -> list[str]:
    return [e["message"] for e in found]


def train_spec(epochs: int, seconds: float = 0.02) -> dict[str, Any]:
    return {"train": {"num_epochs": epochs, "standin_epoch_seconds": seconds}}


def test_train_writes_taos_status_lines_and_checkpoints(tmp_path):
    done = run(tmp_path, "rtdetr", "train", train_spec(3))
    assert done.returncode == 0, done.stdout
    found = events(tmp_path, "train")
    per_epoch = ["Eval metrics generated.", "Training loop in progress", "Train metrics generated."]
    assert messages(found) == [
        "Starting RT-DETR train.",
        "Starting Training Loop.",
        *per_epoch * 3,
        "Training loop complete.",
        "Train finished successfully.",
    ]
    assert [e["status"] for e in found[:2]] == ["STARTED", "STARTED"]
    assert {e["status"] for e in found[2:]} == {"RUNNING"}  # TAO's toolkit writes no SUCCESS
    assert all(abs(e["ts"] - time.time()) < 60 and e["verbosity"] == "INFO" for e in found)
    epochs = [e for e in found if "epoch" in e]
    assert [(e["epoch"], e["max_epoch"], e["step"], e["max_step"]) for e in epochs] == [
        (0, 2, 5, 15),
        (1, 2, 10, 15),
        (2, 2, 15, 15),
    ]
    assert all(e["time_per_epoch"] > 0 and e["eta"] >= 0 for e in epochs)
    assert set(epochs[0]["kpi"]) == {"val_mAP", "val_mAP50", "val_loss"}  # val_mAP: a string
    results = tmp_path / "results" / "train"
    assert sorted(p.name for p in results.glob("*.pth")) == [
        "model_epoch_000.pth",
        "model_epoch_001.pth",
        "model_epoch_002.pth",
        "rtdetr_model_latest.pth",
    ]
    assert os.readlink(results / "rtdetr_model_latest.pth") == "model_epoch_002.pth"
    assert (results / "model_epoch_002.pth").stat().st_size > 1000
    details = summarize(found).details
    assert details["detailed_status"]["message"] == "Train finished successfully."
    kpi = {k["metric"]: k["value"] for k in details["kpi"]}  # merged metric by metric
    assert kpi["train_loss"] == found[-1]["kpi"]["train_loss"]
    assert set(kpi) == {"val_mAP", "val_mAP50", "val_loss", "train_loss"}


def test_train_resumes_after_the_newest_checkpoint(tmp_path):
    assert run(tmp_path, "rtdetr", "train", train_spec(2)).returncode == 0
    again = run(tmp_path, "rtdetr", "train", train_spec(4))
    assert again.returncode == 0, again.stdout
    newest = tmp_path / "results" / "train" / "model_epoch_001.pth"
    assert f"Setting resume checkpoint to {newest}" in again.stdout
    found = events(tmp_path, "train")  # appended to, as TAO's logger does
    resumed = messages(found).index(f"Resuming training from checkpoint: {newest}")
    assert messages(found)[resumed - 1 : resumed + 2] == [
        "Starting RT-DETR train.",
        f"Resuming training from checkpoint: {newest}",
        "Starting Training Loop.",
    ]
    assert [e["epoch"] for e in found if "epoch" in e] == [0, 1, 2, 3]
    assert os.readlink(newest.with_name("rtdetr_model_latest.pth")) == "model_epoch_003.pth"


def interrupt(root: Path, network: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """SIGTERM a 6-epoch train a little into its second epoch."""
    results = root / "results" / "train"
    first = "model_epoch_000.pth" if network == "rtdetr" else "model_epoch_000_step_00005.pth"
    with subprocess.Popen(
        command(root, network, "train", train_spec(6, seconds=0.5)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
    ) as proc:
        wait_for(lambda: (results / first).exists(), 10, "the first checkpoint")
        time.sleep(0.15)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out), results


def test_sigterm_stops_rtdetr_after_its_batch_with_exit_0_and_no_new_checkpoint(tmp_path):
    done, results = interrupt(tmp_path, "rtdetr")
    assert done.returncode == 0, done.stdout  # SIGTERMException is a SystemExit()
    assert "Received SIGTERM: 15" in done.stdout
    found = events(tmp_path, "train")
    assert "Train finished successfully." not in messages(found)
    assert found[-1]["status"] == "RUNNING"  # no line at all for the interruption
    saved = sorted(p.name for p in results.glob("model_epoch_*.pth"))
    assert saved == [f"model_epoch_{n:03d}.pth" for n in range(len(saved))] and len(saved) < 6
    assert os.readlink(results / "rtdetr_model_latest.pth") == saved[-1]


def test_sigterm_saves_dinos_exception_checkpoint_and_resume_starts_from_it(tmp_path):
    done, results = interrupt(tmp_path, "dino")
    assert done.returncode == 0, done.stdout
    latest = os.readlink(results / "dino_model_latest.pth")
    match = re.fullmatch(r"model_epoch_(\d{3})_step_(\d{5})\.pth", latest)
    assert match, latest
    epoch, step = int(match[1]), int(match[2])
    header = json.loads((results / latest).read_bytes().split(b"\n")[0])
    assert (header["epoch"], header["global_step"]) == (epoch, step)
    assert f"Saved checkpoint {results / latest}" in done.stdout

    again = run(tmp_path, "dino", "train", train_spec(6))
    assert again.returncode == 0, again.stdout
    found = events(tmp_path, "train")
    restart = messages(found).index(f"Resuming training from checkpoint: {results / latest}")
    after = [(e["epoch"], e["step"]) for e in found[restart:] if "epoch" in e]
    # the interrupted epoch is finished from its saved step, then the rest follow
    assert after == [(n, (n + 1) * 5) for n in range(epoch, 6)]
    assert messages(found)[-1] == "Train finished successfully."


def test_evaluate_without_its_checkpoint_writes_a_failure_line_and_exits_1(tmp_path):
    missing = tmp_path / "nowhere" / "model_epoch_009.pth"
    done = run(tmp_path, "rtdetr", "evaluate", {"evaluate": {"checkpoint": str(missing)}})
    assert done.returncode == 1
    assert "Error executing job with overrides" in done.stdout
    found = events(tmp_path, "evaluate")
    assert messages(found)[:2] == ["Starting RT-DETR evaluate.", f"Loading checkpoint: {missing}"]
    assert found[-1]["status"] == "FAILURE"
    assert found[-1]["message"] == (
        f"File system error: [Errno 2] No such file or directory: '{missing}'"
    )
    unset = run(tmp_path, "rtdetr", "evaluate", {"evaluate": {"checkpoint": "???"}})
    assert unset.returncode == 1
    assert events(tmp_path, "evaluate")[-1]["message"] == (
        "Configuration error: Missing mandatory value: evaluate.checkpoint"
    )


def test_evaluate_export_and_gen_trt_engine_chain_from_a_checkpoint(tmp_path):
    assert run(tmp_path, "rtdetr", "train", train_spec(1)).returncode == 0
    checkpoint = str(tmp_path / "results" / "train" / "model_epoch_000.pth")
    evaluated = run(tmp_path, "rtdetr", "evaluate", {"evaluate": {"checkpoint": checkpoint}})
    assert evaluated.returncode == 0, evaluated.stdout
    kpi = summarize(events(tmp_path, "evaluate")).details["kpi"]
    assert [k["metric"] for k in kpi] == ["test_mAP", "test_mAP50"]

    exported = run(tmp_path, "rtdetr", "export", {"export": {"checkpoint": checkpoint}})
    assert exported.returncode == 0, exported.stdout
    onnx = tmp_path / "results" / "export" / "model.onnx"
    assert onnx.stat().st_size > 0
    assert messages(events(tmp_path, "export"))[-1] == "Export finished successfully."

    spec = {"gen_trt_engine": {"onnx_file": str(onnx)}}
    built = run(tmp_path, "rtdetr", "gen_trt_engine", spec)
    assert built.returncode == 0, built.stdout
    assert "Engine build finished successfully." in built.stdout
    assert (tmp_path / "results" / "gen_trt_engine" / "model.engine").stat().st_size > 0
    assert messages(events(tmp_path, "gen_trt_engine")) == [
        "Starting rtdetr gen_trt_engine.",
        "Gen_trt_engine finished successfully.",
    ]

    again = run(tmp_path, "rtdetr", "export", {"export": {"checkpoint": checkpoint}})
    assert again.returncode == 1 and "already exists" in again.stdout
    assert events(tmp_path, "export")[-1]["status"] == "STARTED"  # an assertion: no line


def test_inference_writes_labels_and_annotated_images(tmp_path):
    assert run(tmp_path, "rtdetr", "train", train_spec(1)).returncode == 0
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.jpg", "b.png", "notes.txt"):
        (images / name).write_bytes(b"\xff\xd8 not really an image")
    spec = {
        "inference": {"checkpoint": str(tmp_path / "results/train/model_epoch_000.pth")},
        "dataset": {"infer_data_sources": {"image_dir": [str(images)]}},
    }
    done = run(tmp_path, "rtdetr", "inference", spec)
    assert done.returncode == 0, done.stdout
    out = tmp_path / "results" / "inference"
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["a.txt", "b.txt"]
    assert sorted(p.name for p in (out / "images_annotated").iterdir()) == ["a.jpg", "b.png"]
    assert (out / "labels" / "a.txt").read_text().split()[0] == "object"


def test_dataset_convert_splits_a_coco_tree(tmp_path):
    source = tmp_path / "coco"
    (source / "images").mkdir(parents=True)
    coco: dict[str, Any] = {"images": [], "annotations": [], "categories": []}
    coco["categories"] = [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}]
    for n in range(5):
        (source / "images" / f"{n}.jpg").write_bytes(b"jpeg")
        coco["images"].append({"id": n, "file_name": f"{n}.jpg", "width": 8, "height": 8})
        for k in range(n % 3 + 1):
            box = {"bbox": [0, 0, 4, 4], "area": 16, "iscrowd": 0}
            annotation = {"id": 10 * n + k, "image_id": n, "category_id": k % 2 + 1, **box}
            coco["annotations"].append(annotation)
    (source / "annotations.json").write_text(json.dumps(coco))
    seed_000 = {"output_format": "tfrecords", "train_split": 0.8, "val_split": 0.2}
    spec = {**seed_000, "shuffle": True, "data": {"input_dir": str(source)}}
    done = run(tmp_path, "dataset", "convert", spec)
    assert done.returncode == 0, done.stdout
    out = tmp_path / "results" / "convert"
    train = json.loads((out / "train" / "annotations.json").read_text())
    val = json.loads((out / "val" / "annotations.json").read_text())
    assert (len(train["images"]), len(val["images"])) == (4, 1)
    ids = {i["id"] for i in train["images"]} | {i["id"] for i in val["images"]}
    assert ids == set(range(5))
    assert len(train["annotations"]) + len(val["annotations"]) == len(coco["annotations"])
    assert len(list((out / "train" / "images").iterdir())) == 4
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"]["val"]["images"] == 1
    found = events(tmp_path, "convert")
    assert messages(found) == ["Starting dataset convert.", "Convert finished successfully."]
    (categorical,) = summarize(found).details["categorical"]
    counts = {c["category"]: c["value"] for c in categorical["category_wise_values"]}
    assert categorical["metric"] == "num_objects" and counts == {"person": 6, "car": 3}


def test_the_encryption_key_is_never_printed_or_logged(tmp_path):
    spec = {**train_spec(1), "encryption_key": KEY}
    override = f"encryption_key={KEY}"
    done = run(tmp_path, "rtdetr", "train", spec, override)
    assert done.returncode == 0 and KEY not in done.stdout
    failed = run(tmp_path, "rtdetr", "evaluate", {"evaluate": {"checkpoint": "/no.pth"}}, override)
    assert failed.returncode == 1 and KEY not in failed.stdout
    for path in (tmp_path / "results").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_cli_errors_are_taos(tmp_path):
    no_spec = subprocess.run(
        [python(), str(STANDIN), "rtdetr", "train"], capture_output=True, text=True
    )
    assert no_spec.returncode == 1
    assert "requires the following argument: -e/--experiment_spec_file" in no_spec.stdout
    absent = subprocess.run(
        [python(), str(STANDIN), "rtdetr", "train", "-e", str(tmp_path / "x.yaml")],
        capture_output=True,
        text=True,
    )
    assert absent.returncode == 1 and "doesn't exist" in absent.stdout


def test_catalog_entries_run_the_standin_with_their_own_command(tmp_path):
    entries = yaml.safe_load((TAO / "entries.yaml").read_text())["base_experiments"]
    rtdetr, converter = entries
    assert rtdetr["network_arch"] == "rtdetr" and "resnet50" in rtdetr["ngc_path"]
    assert (rtdetr["status_protocol"], converter["kind"]) == ("tao", "dataset")
    assert converter["actions"]["convert"]["produces_data"] is True
    spec = rtdetr["actions"]["train"]["default_spec"]
    spec["train"]["num_epochs"], spec["train"]["num_gpus"] = 1, 2  # seed 000's jq
    spec["train"]["standin_epoch_seconds"] = 0.01
    spec_file = tmp_path / "specs.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    values = {
        "python": python(),
        "action": "train",
        "spec_file": str(spec_file),
        "results_dir": str(tmp_path / "job"),
    }
    argv = [part.replace("@STANDIN@", str(STANDIN)).format(**values) for part in rtdetr["command"]]
    done = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    status_file = Path(rtdetr["status_file"].format(**values))
    found = parse_tao_lines(status_file.read_bytes(), 0).events
    assert found[-1]["message"] == "Train finished successfully."
