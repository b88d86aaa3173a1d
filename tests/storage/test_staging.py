"""A train job reads its dataset from S3 and writes its results back there: the dataset is
staged before the run starts (by dataset id or by URI), the workload reads the staged
copy, and the results are copied to the workspace bucket."""

from __future__ import annotations

import gzip
from importlib import resources

import pytest

from jobyard.schemas.staging import Source, classify, environment, sources
from tests.helpers import assert_error, wait_for
from tests.integration.test_engine import train, until_status

ROWS = 600  # a subset of the packaged digits, so the log proves which data was read


@pytest.fixture
def digits(s3_server, bucket):
    """The first ROWS rows of the packaged digits set at digits/digits.csv.gz."""
    text = gzip.decompress(
        resources.files("jobyard.workloads").joinpath("data", "digits.csv.gz").read_bytes()
    ).decode()
    subset = "".join(text.splitlines(keepends=True)[:ROWS]).encode()
    s3_server.client().put_object(
        Bucket=bucket, Key="digits/digits.csv.gz", Body=gzip.compress(subset)
    )
    return bucket


@pytest.fixture
def s(login):
    return login()


def _dataset(s, ws_id):
    body = {
        "name": "digits-600",
        "type": "image_classification",
        "format": "raw",
        "workspace": ws_id,
        "cloud_file_path": "/digits",
        "skip_validation": True,
    }
    created = s.call("POST", "datasets", json=body)
    assert created.status_code == 201, created.json
    return created.json["id"]


def test_a_train_job_reads_its_dataset_from_s3_and_writes_results_there(
    s, seaweed_workspace, digits, s3_server, worker
):
    ws = seaweed_workspace(s)["id"]
    dataset = _dataset(s, ws)
    worker()
    job_id = train(s, epochs=2, workspace=ws, train_dataset_uris=[dataset])
    done = until_status(s, job_id, "Done", timeout=90)
    log = s.call("GET", f"jobs/{job_id}:logs").data.decode()
    assert f"datasets/train-0/digits.csv.gz ({ROWS} rows)" in log, log[:2000]
    assert "transfer" in done["job_details"]  # the staging copy, then the results upload

    def copied():
        listed = s3_server.client().list_objects_v2(Bucket=digits, Prefix=f"results/{job_id}/")
        return {o["Key"].rsplit("/", 1)[-1] for o in listed.get("Contents", [])}

    wait_for(lambda: {"model_best.npz", "train_summary.json"} <= copied(), 30, "results in S3")
    shown = lambda: s.call("GET", f"jobs/{job_id}").json["job_details"]["transfer"]  # noqa: E731
    wait_for(
        lambda: shown()["percent"] == 100.0 and shown()["direction"] == "upload",
        30,
        "the upload's progress at 100%",
    )


def test_a_uri_in_the_workspace_bucket_is_staged_too(s, seaweed_workspace, digits, worker):
    ws = seaweed_workspace(s)["id"]
    worker()
    job_id = train(s, epochs=1, workspace=ws, train_dataset_uris=[f"seaweedfs://{digits}/digits"])
    until_status(s, job_id, "Done", timeout=90)
    assert f"({ROWS} rows)" in s.call("GET", f"jobs/{job_id}:logs").data.decode()


def test_a_uri_outside_the_workspace_bucket_is_refused(s, seaweed_workspace, digits, worker):
    ws = seaweed_workspace(s)["id"]
    worker()
    job_id = train(s, workspace=ws, train_dataset_uris=["seaweedfs://someone-else/digits"])
    failed = until_status(s, job_id, "Error", timeout=60)
    assert (
        "not in the job's workspace bucket" in failed["job_details"]["detailed_status"]["message"]
    )


def test_an_unknown_dataset_id_is_a_400(s):
    body = assert_error(
        s.call(
            "POST",
            "jobs",
            json={
                "kind": "experiment",
                "network_arch": "classification_pyt",
                "action": "train",
                "train_dataset_uris": ["no-such-dataset"],
            },
        ),
        400,
    )
    assert "train_dataset_uris" in body["errors"]


def test_sources_and_environment_are_pure():
    job = {
        "train_dataset_uris": ["/data/a", "lustre:///scratch/b", "aws://bk/x/y", "ds1"],
        "eval_dataset_uri": "https://example.com/v.tar",
    }
    found = sources(job)
    assert found == [
        Source("train-0", "train_dataset_uris", "path", "/data/a"),
        Source("train-1", "train_dataset_uris", "path", "/scratch/b"),
        Source("train-2", "train_dataset_uris", "object", "x/y", bucket="bk"),
        Source("train-3", "train_dataset_uris", "dataset", "ds1"),
        Source("eval", "eval_dataset_uri", "url", "https://example.com/v.tar"),
    ]
    dirs = {
        "train-0": "/data/a",
        "train-1": "/scratch/b",
        "train-2": "/s/t2",
        "train-3": "/s/t3",
        "eval": "/s/eval",
    }
    assert environment(dirs, found) == {
        "JY_TRAIN_DATASET_DIRS": "/data/a:/scratch/b:/s/t2:/s/t3",
        "JY_EVAL_DATASET_DIR": "/s/eval",
    }
    assert classify("eval", "eval_dataset_uri", "file:///x").value == "/x"
