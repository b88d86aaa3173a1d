"""Dataset jobs end to end on the embedded default (process backend, reference workload):
seed 000's ``kind: dataset`` request shape, validate and convert, the converted data
becoming a new dataset version that a train job then reads."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from jobyard.store.catalog import REFERENCE
from jobyard.workloads import data
from tests.helpers import assert_error
from tests.integration.test_engine import until_status

pytestmark = pytest.mark.integration


def digits_csv(path, rows=400):
    """A CSV as users have them: a header, 0..255 pixels, a label column."""
    pixels, labels = data.load_digits()
    table = np.column_stack([np.rint(pixels[:rows] * 255), labels[:rows]]).astype(int)
    header = ",".join([*(f"p{i}" for i in range(64)), "label"])
    lines = [header, *(",".join(map(str, row)) for row in table)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_convert_validate_then_train_on_the_new_dataset_version(login, worker, settings):
    s = login()
    source = settings.data_dir / "incoming"
    source.mkdir()
    digits_csv(source / "digits.csv")
    worker()
    # seed 000's dataset processing request, with the reference workload's convert specs
    specs = s.call("GET", "jobs:schema?action=convert&kind=dataset").json["default"]
    specs["convert"].update(input_format="csv", shuffle=True)
    convert = s.call(
        "POST",
        "jobs",
        json={
            "kind": "dataset",
            "train_dataset_uris": [f"file://{source}"],
            "action": "convert",
            "specs": specs,
        },
    )
    assert convert.status_code == 201, convert.json
    job = until_status(s, convert.json["id"], "Done")
    assert job["network_arch"] == "image_classification"
    output = job["output_dataset_id"]
    dataset = s.call("GET", f"datasets/{output}").json
    assert dataset["version"] == "1" and dataset["source_job"]["job_id"] == job["id"]
    kpi = {k["metric"]: k["value"] for k in job["job_details"]["kpi"]}
    assert kpi["rows"] == 400
    files = s.call("POST", f"jobs/{job['id']}:list_files", json={}).json
    assert "dataset/digits.csv.gz" in files
    # validate the new dataset by its id; then train on it
    validate = s.call(
        "POST",
        "jobs",
        json={"kind": "dataset", "action": "validate", "train_dataset_uris": [output]},
    )
    assert validate.status_code == 201, validate.json
    checked = until_status(s, validate.json["id"], "Done")
    assert {k["metric"]: k["value"] for k in checked["job_details"]["kpi"]}["problems"] == 0
    specs = REFERENCE.default_spec("train")
    specs["train"]["num_epochs"] = 2
    train = s.call(
        "POST",
        "jobs",
        json={
            "kind": "experiment",
            "network_arch": "classification_pyt",
            "action": "train",
            "specs": specs,
            "train_dataset_uris": [output],
        },
    )
    assert train.status_code == 201, train.json
    until_status(s, train.json["id"], "Done", timeout=90)
    log = s.call("GET", f"jobs/{train.json['id']}:logs").get_data(as_text=True)
    assert "dataset/digits.csv.gz (400 rows)" in log, log[:2000]
    staged = gzip.decompress(
        (settings.runs_dir / job["id"] / "results" / "dataset" / "digits.csv.gz").read_bytes()
    )
    assert staged.count(b"\n") == 400


def test_a_dataset_job_must_name_an_action_of_a_dataset_entry(login):
    s = login()
    body = {"kind": "dataset", "action": "train", "train_dataset_uris": ["/data/x"]}
    refused = assert_error(s.call("POST", "jobs", json=body), 400)
    assert "action train is not supported by digits_dataset" in refused["error_desc"]
    experiment = {**body, "action": "convert", "network_arch": "classification_pyt"}
    refused = assert_error(s.call("POST", "jobs", json=experiment), 400)
    assert (
        "no dataset base experiment runs network_arch 'classification_pyt'"
        in (refused["error_desc"])
    )
