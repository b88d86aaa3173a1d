"""The reference workload's dataset actions: convert (images or CSV -> the training format)
and validate, run in process through ``classifier.main`` and once end to end as processes."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jobyard.workloads import data, datasets, specs
from tests.unit.workload_runs import Runner

ROOT = Path(__file__).parents[2]
PER_CLASS = 12


def raw_rows(per_class: int = PER_CLASS) -> tuple[np.ndarray, np.ndarray]:
    """The first ``per_class`` packaged rows of each class: raw pixels 0..16 and labels."""
    pixels, labels = data._raw()
    picked = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in data.CLASSES])
    return pixels[picked].astype(np.int64), labels[picked].astype(np.int64)


def read_training_file(path: Path) -> np.ndarray:
    return np.loadtxt(io.StringIO(gzip.decompress(path.read_bytes()).decode()), delimiter=",")


def image_folder(
    root: Path, pixels: np.ndarray, labels: np.ndarray, *, dark_on_light: bool
) -> Path:
    """Each row as a 32x32 image (4x4 blocks, as the UCI digits were drawn) under ``<label>/``;
    mostly PNG, some BMP, some RGB, so several formats and modes are read."""
    image = pytest.importorskip("PIL.Image")
    for index, (row, label) in enumerate(zip(pixels, labels, strict=True)):
        gray = np.kron(row.reshape(8, 8), np.ones((4, 4))) * 255 / 16
        if dark_on_light:
            gray = 255 - gray
        img = image.fromarray(np.rint(gray).astype(np.uint8), "L")
        if index % 5 == 1:
            img = img.convert("RGB")
        suffix = ".bmp" if index % 7 == 3 else ".png"
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        img.save(root / str(label) / f"img_{index:04d}{suffix}")
    return root


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runner:
    return Runner(tmp_path, monkeypatch)


def convert_spec(**values: Any) -> dict[str, Any]:
    spec = specs.default_spec("convert")
    spec["convert"].update(values)
    return spec


def validate_spec(**values: Any) -> dict[str, Any]:
    spec = specs.default_spec("validate")
    spec["validate"].update(values)
    return spec


def write_csv(path: Path, rows: list[list[Any]], header: list[str] | None = None) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("dark_on_light", [False, True])
def test_convert_image_folder_recovers_the_digits(tmp_path, run, dark_on_light):
    pixels, labels = raw_rows()
    folder = image_folder(tmp_path / "in", pixels, labels, dark_on_light=dark_on_light)
    (folder / "3" / "notes.txt").write_text("not an image")
    code, events, results = run("convert", convert_spec(), JY_TRAIN_DATASET_DIRS=str(folder))
    assert code == 0, events[-1]
    converted = read_training_file(results / datasets.OUTPUT_DIR / data.DATA_FILE)
    expected = np.column_stack([pixels, labels])  # class by class, files in name order
    np.testing.assert_array_equal(converted, expected)
    progress = [e for e in events if e["status"] == "RUNNING"]
    assert progress and progress[-1]["processed"] == progress[-1]["total"] == len(labels)
    final = events[-1]
    assert final["status"] == "SUCCESS"
    assert final["kpi"] == {"rows": len(labels), "classes": 10}
    assert final["categorical"] == {"num_objects": {str(c): PER_CLASS for c in range(10)}}
    summary = json.loads((results / datasets.CONVERT_SUMMARY).read_text())
    assert summary["input_format"] == "image_folder"
    assert summary["inverted"] == (len(labels) if dark_on_light else 0)
    assert summary["skipped_files"] == ["3/notes.txt"]
    assert summary["output"] == "dataset/digits.csv.gz"


def test_convert_csv_with_a_header_and_0_255_pixels(tmp_path, run):
    pixels, labels = raw_rows(3)
    header = ["label", *(f"px{i}" for i in range(64))]  # the label first: found by name
    rows = [
        [int(lab), *np.rint(row * 255 / 16).astype(int)]
        for row, lab in zip(pixels, labels, strict=True)
    ]
    folder = tmp_path / "in"
    folder.mkdir()
    write_csv(folder / "scans.csv", rows, header)
    code, events, results = run("convert", convert_spec(), JY_TRAIN_DATASET_DIRS=str(folder))
    assert code == 0, events[-1]
    converted = read_training_file(results / "dataset" / "digits.csv.gz")
    np.testing.assert_array_equal(converted, np.column_stack([pixels, labels]))
    summary = json.loads((results / datasets.CONVERT_SUMMARY).read_text())
    assert summary["pixel_range"] == 255 and summary["header"] is True
    assert summary["input_format"] == "csv"


def test_convert_shuffles_reproducibly_and_inverts_csv_rows_on_request(tmp_path, run):
    pixels, labels = raw_rows(3)
    folder = tmp_path / "in"
    folder.mkdir()
    write_csv(folder / "digits.csv", [[*row, lab] for row, lab in zip(pixels, labels, strict=True)])
    spec = convert_spec(shuffle=True, seed=7, invert=True)
    env = {"JY_TRAIN_DATASET_DIRS": str(folder)}
    outputs = [run("convert", spec, **env)[2] / "dataset" / "digits.csv.gz" for _ in range(2)]
    assert outputs[0].read_bytes() == outputs[1].read_bytes()
    converted = read_training_file(outputs[0])
    order = np.random.default_rng(7).permutation(len(labels))
    np.testing.assert_array_equal(converted[:, :64], 16 - pixels[order])
    np.testing.assert_array_equal(converted[:, 64], labels[order])


@pytest.mark.parametrize(
    ("bad_row", "fragment"),
    [
        (["1"] * 64, "bad.csv:3: 64 columns, expected 65"),
        (["0"] * 10 + ["300"] + ["0"] * 53 + ["4"], "bad.csv:3: column 11: 300 is outside 0..255"),
        (["0"] * 64 + ["12"], "bad.csv:3: label '12' is not a class (0..9)"),
        (["0"] * 5 + ["x"] + ["0"] * 58 + ["4"], "bad.csv:3: column 6: 'x' is not a number"),
    ],
)
def test_convert_fails_naming_the_bad_row(tmp_path, run, capsys, bad_row, fragment):
    folder = tmp_path / "in"
    folder.mkdir()
    write_csv(folder / "bad.csv", [["0"] * 64 + ["1"], bad_row, ["16"] * 64 + ["2"]], ["h"] * 65)
    code, events, results = run("convert", convert_spec(), JY_TRAIN_DATASET_DIRS=str(folder))
    assert code == 1
    final = events[-1]
    assert final["status"] == "FAILURE"
    assert fragment in final["message"]
    assert len(final["errors"]) == 1 and final["errors"][0].startswith(fragment)
    assert fragment in capsys.readouterr().err
    assert not (results / "dataset" / "digits.csv.gz").exists()


def test_convert_fails_naming_an_unreadable_image(tmp_path, run):
    pixels, labels = raw_rows(1)
    folder = image_folder(tmp_path / "in", pixels, labels, dark_on_light=False)
    (folder / "7" / "broken.png").write_bytes(b"not a png at all")
    code, events, _ = run("convert", convert_spec(), JY_TRAIN_DATASET_DIRS=str(folder))
    assert code == 1
    assert "7/broken.png: cannot read image" in events[-1]["message"]


def test_images_without_pillow_say_what_to_install(tmp_path, run, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)  # makes `import PIL.Image` fail
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    (tmp_path / "in" / "0").mkdir(parents=True)
    (tmp_path / "in" / "0" / "a.png").write_bytes(b"")
    code, events, _ = run("convert", convert_spec(), JY_TRAIN_DATASET_DIRS=str(tmp_path / "in"))
    assert code == 1
    assert "install jobyard[images]" in events[-1]["message"]


def test_dataset_actions_need_a_dataset(run):
    code, events, _ = run("validate", validate_spec())
    assert code == 2
    assert "JY_TRAIN_DATASET_DIRS" in events[-1]["message"]


def test_validate_accepts_the_packaged_training_data(tmp_path, run):
    folder = tmp_path / "in"
    folder.mkdir()
    source = ROOT / "workloads" / "data" / data.DATA_FILE
    (folder / data.DATA_FILE).write_bytes(source.read_bytes())
    code, events, results = run("validate", validate_spec(), JY_TRAIN_DATASET_DIRS=str(folder))
    assert code == 0, events[-1]
    final = events[-1]
    assert final["status"] == "SUCCESS"
    assert final["kpi"]["rows"] == 1797 and final["kpi"]["classes"] == 10
    assert final["kpi"]["problems"] == 0 and final["kpi"]["duplicates"] == 0
    counts = np.bincount(data._raw()[1].astype(int))
    assert final["categorical"] == {"num_objects": {str(c): int(counts[c]) for c in range(10)}}
    report = json.loads((results / datasets.VALIDATION_REPORT).read_text())
    assert report["valid"] is True and report["trainable"] is True
    assert report["input_format"] == "training"


def _broken_training_csv(folder: Path) -> Path:
    pixels, labels = raw_rows(2)
    keep = labels != 9  # class 9 left empty
    rows: list[list[Any]] = [
        [*map(int, r), int(lab)] for r, lab in zip(pixels[keep], labels[keep], strict=True)
    ]
    rows.insert(1, rows[0][:-1])  # line 3: 64 columns
    rows.insert(3, [0] * 20 + [17] + [0] * 43 + [1])  # line 5: pixel above 16
    rows.insert(4, [0] * 64 + [12])  # line 6: no such class
    rows.insert(5, [0] * 63 + [3.5, 1])  # line 7: not an integer
    rows.append(list(rows[0]))  # a duplicate of line 2
    folder.mkdir()
    return write_csv(folder / "digits.csv", rows, ["p"] * 65)  # line 1: a header


def test_validate_reports_every_problem(tmp_path, run, capsys):
    folder = tmp_path / "in"
    _broken_training_csv(folder)
    code, events, results = run("validate", validate_spec(), JY_TRAIN_DATASET_DIRS=str(folder))
    assert code == 1
    final = events[-1]
    assert final["status"] == "FAILURE"
    kpi = final["kpi"]
    assert {k: kpi[k] for k in ("header", "wrong_column_count", "pixel_out_of_range")} == {
        "header": 1,
        "wrong_column_count": 1,
        "pixel_out_of_range": 1,
    }
    assert kpi["unknown_label"] == 1 and kpi["bad_value"] == 1
    assert kpi["empty_class"] == 1 and kpi["duplicates"] == 1 and kpi["problems"] == 7
    assert kpi["rows"] == 18 + 4 + 1 and kpi["valid_rows"] == 19
    assert final["categorical"]["num_objects"]["9"] == 0
    assert final["message"].count("digits.csv:") >= 5
    assert final["errors"][:5] == [
        "digits.csv:1: a header row: the training format has none",
        "digits.csv:3: 64 columns, expected 65 (64 pixels and a label)",
        "digits.csv:5: column 21: 17 is outside 0..16",
        "digits.csv:6: label '12' is not a class (0..9)",
        "digits.csv:7: column 64: 3.5 is not an integer (the training format's are)",
    ]
    assert "digits.csv:1" in capsys.readouterr().err
    report = json.loads((results / datasets.VALIDATION_REPORT).read_text())
    assert report["valid"] is False and report["trainable"] is False
    assert {p["kind"] for p in report["problems"]} >= {"empty_class", "duplicates"}


def test_validate_can_allow_duplicates(tmp_path, run):
    folder = tmp_path / "in"
    folder.mkdir()
    pixels, labels = raw_rows(1)
    rows = [[*row, lab] for row, lab in zip(pixels, labels, strict=True)]
    write_csv(folder / "digits.csv", rows + rows[:2])
    env = {"JY_TRAIN_DATASET_DIRS": str(folder)}
    assert run("validate", validate_spec(), **env)[0] == 1
    code, events, _ = run("validate", validate_spec(allow_duplicates=True), **env)
    assert code == 0 and events[-1]["kpi"]["duplicates"] == 2


def test_validate_reads_an_image_folder_as_convert_does(tmp_path, run):
    pixels, labels = raw_rows(1)
    folder = image_folder(tmp_path / "in", pixels, labels, dark_on_light=True)
    (folder / "extra").mkdir()
    code, events, _ = run("validate", validate_spec(), JY_TRAIN_DATASET_DIRS=str(folder))
    assert code == 1
    assert events[-1]["errors"] == [
        "extra/: folder 'extra' is not a class: class folders are named 0..9"
    ]
    assert events[-1]["kpi"]["rows"] == 10 and events[-1]["kpi"]["unknown_label"] == 1


def _process(tmp: Path, action: str, spec: dict[str, Any], results: Path, **env: str) -> Any:
    spec_file = tmp / f"spec-{action}-{time.monotonic_ns()}.json"
    spec_file.write_text(json.dumps(spec))
    full = {k: v for k, v in os.environ.items() if not k.startswith("JY_")}
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full.get("PYTHONPATH")]))
    full.update(
        JY_JOB_ID=f"job-{action}",
        JY_RUN="1",
        JY_ACTION=action,
        JY_SPECS_FILE=str(spec_file),
        JY_RESULTS_DIR=str(results),
        JY_STATUS_FILE=str(results / "status.jsonl"),
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "jobyard.workloads.classifier"],
        env=full,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_convert_then_validate_then_train_on_the_converted_dataset(tmp_path):
    pixels, labels = raw_rows(20)
    folder = image_folder(tmp_path / "scans", pixels, labels, dark_on_light=True)
    converted = tmp_path / "convert"
    done = _process(
        tmp_path, "convert", convert_spec(), converted, JY_TRAIN_DATASET_DIRS=str(folder)
    )
    assert done.returncode == 0, done.stderr
    dataset = converted / datasets.OUTPUT_DIR
    env = {"JY_TRAIN_DATASET_DIRS": str(dataset)}
    checked = _process(tmp_path, "validate", validate_spec(), tmp_path / "validate", **env)
    assert checked.returncode == 0, checked.stderr
    spec = specs.default_spec("train")
    spec["train"].update(num_epochs=2, batch_size=32)
    trained = _process(tmp_path, "train", spec, tmp_path / "train", **env)
    assert trained.returncode == 0, trained.stderr
    assert f"data: {dataset / data.DATA_FILE} (200 rows)" in trained.stdout
    summary = json.loads((tmp_path / "train" / "train_summary.json").read_text())
    assert summary["status"] == "SUCCESS" and summary["epochs_completed"] == 2
