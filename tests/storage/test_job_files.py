"""A job's files over HTTP: listing, the whole-job tar.gz stream (in bounded
memory), and selective downloads, on results the process backend keeps."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tracemalloc

import pytest

from jobyard.api.errors import ApiError
from jobyard.api.job_files import selection
from jobyard.backends.base import Handle
from jobyard.schemas.checkpoints import best_by_metric, best_model, latest_model
from jobyard.store.backups import IterStream
from jobyard.store.fingerprint import forced
from tests.helpers import assert_error

pytestmark = pytest.mark.integration

FILES = {
    "model_best.npz": b"best",
    "model_latest.npz": b"latest",
    "checkpoints/epoch_002.npz": b"e2",
    "train_summary.json": b"{}",
}


@pytest.fixture
def s(login):
    return login()


@pytest.fixture
def finished_job(s, store, tmp_path):
    """A Done train job whose process-backend results hold FILES, with a stored log."""
    results = tmp_path / "runs" / "job" / "results"
    for path, data in FILES.items():
        (results / path).parent.mkdir(parents=True, exist_ok=True)
        (results / path).write_bytes(data)
    job = store.jobs.create(
        s.org,
        "u",
        {
            "kind": "experiment",
            "action": "train",
            "name": "j",
            "specs": {"train": {"num_epochs": 2}},
        },
        "process",
        forced(),
    )
    handle = Handle("process", "jy-x-r1", {"results_dir": str(results)}).to_doc()
    store.db["jobs"].update_one(
        {"_id": job["_id"]}, {"$set": {"handle": handle, "status": "Done", "active": False}}
    )
    store.logs.append(job["_id"], s.org, 1, 0, b"epoch 1\n")
    store.logs.append(job["_id"], s.org, 1, 8, b"epoch 2\n")
    return job["_id"], results


def _untar(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_list_files_gives_results_and_on_request_logs_and_specs(s, finished_job):
    job_id, _ = finished_job
    plain = s.call("POST", f"jobs/{job_id}:list_files", json={})
    assert plain.status_code == 200 and sorted(plain.json) == sorted(FILES)
    everything = s.call(
        "POST", f"jobs/{job_id}:list_files", json={"retrieve_logs": True, "retrieve_specs": True}
    ).json
    assert set(everything) == {*FILES, "logs_from_toolkit.txt", "experiment_specs.json"}


def test_download_streams_every_file_under_the_job_folder(s, finished_job):
    job_id, _ = finished_job
    response = s.call("GET", f"jobs/{job_id}:download")
    assert response.status_code == 200 and response.mimetype == "application/gzip"
    assert f"{job_id}.tar.gz" in response.headers["Content-Disposition"]
    files = _untar(response.get_data())
    assert {k.removeprefix(f"{job_id}/"): v for k, v in files.items()} == {
        **FILES,
        "logs_from_toolkit.txt": b"epoch 1\nepoch 2\n",
        "experiment_specs.json": files[f"{job_id}/experiment_specs.json"],
    }
    assert b'"num_epochs": 2' in files[f"{job_id}/experiment_specs.json"]


def test_download_of_a_large_result_stays_within_a_small_memory_budget(s, finished_job):
    job_id, results = finished_job
    big = results / "big.bin"
    digest = hashlib.sha256()
    with open(big, "wb") as out:
        for _ in range(32):
            block = os.urandom(1024 * 1024)  # incompressible: 32 MiB through the stream
            digest.update(block)
            out.write(block)
    tracemalloc.start()
    try:
        response = s.client.get(s.url(f"jobs/{job_id}:download"), headers=s.headers, buffered=False)
        got = hashlib.sha256()
        # read as a client would: a streaming tar reader over the chunks as they come
        stream = io.BufferedReader(IterStream(iter(response.response)))
        with tarfile.open(fileobj=stream, mode="r|gz") as tar:
            for member in tar:
                if member.name == f"{job_id}/big.bin":
                    source = tar.extractfile(member)
                    while chunk := source.read(1024 * 1024):
                        got.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.hexdigest() == digest.hexdigest()
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB while streaming 32 MiB"


def test_selective_download_of_the_best_model_and_listed_files(s, finished_job):
    job_id, _ = finished_job
    best = s.call(
        "POST",
        f"jobs/{job_id}:download_selective_files",
        json={"best_model": True, "latest_model": False},
    )
    assert best.status_code == 200
    assert _untar(best.get_data()) == {f"{job_id}/model_best.npz": b"best"}
    some = s.call(
        "POST",
        f"jobs/{job_id}:download_selective_files",
        json={"latest_model": True, "file_lists": ["train_summary.json", "logs_from_toolkit.txt"]},
    )
    assert sorted(_untar(some.get_data())) == [
        f"{job_id}/logs_from_toolkit.txt",
        f"{job_id}/model_latest.npz",
        f"{job_id}/train_summary.json",
    ]


def test_selective_download_says_what_is_missing(s, finished_job, store):
    job_id, results = finished_job
    body = assert_error(
        s.call(
            "POST", f"jobs/{job_id}:download_selective_files", json={"file_lists": ["nope.txt"]}
        ),
        404,
    )
    assert "nope.txt" in body["error_desc"]
    assert_error(s.call("POST", f"jobs/{job_id}:download_selective_files", json={}), 400)
    assert_error(
        s.call("POST", f"jobs/{job_id}:download_selective_files", json={"best_model": [1]}), 400
    )
    (results / "model_best.npz").unlink()
    body = assert_error(
        s.call("POST", f"jobs/{job_id}:download_selective_files", json={"best_model": True}), 404
    )
    assert "best model" in body["error_desc"]


def test_a_job_that_never_ran_has_only_its_specs(s, store):
    job = store.jobs.create(
        s.org, "u", {"kind": "experiment", "action": "train"}, "process", forced()
    )
    listed = s.call("POST", f"jobs/{job['_id']}:list_files", json={"retrieve_specs": True})
    assert listed.json == ["experiment_specs.json"]


def test_other_orgs_jobs_unknown_jobs_and_missing_backends(login, s, finished_job, store):
    job_id, _ = finished_job
    other = login(org="other")
    assert_error(other.call("GET", f"jobs/{job_id}:download"), 404)
    assert_error(other.call("POST", f"jobs/{job_id}:list_files", json={}), 404)
    assert_error(s.call("GET", "jobs/nope:download"), 404)
    store.db["jobs"].update_one({"_id": job_id}, {"$set": {"backend": "teleport"}})
    body = assert_error(s.call("GET", f"jobs/{job_id}:download"), 503)
    assert "teleport" in body["error_desc"]


def test_model_choice_rules():
    paths = [
        "checkpoints/epoch_002.npz",
        "checkpoints/epoch_010.npz",
        "checkpoints/epoch_9.npz",
        "notes_best_model.txt",
    ]
    assert best_model(paths) is None  # a text file is not a model
    assert latest_model(paths) == "checkpoints/epoch_010.npz"
    assert latest_model([*paths, "model_latest.pth"]) == "model_latest.pth"
    assert best_model(["a/best_model.pth", "model_best.npz"]) == "a/best_model.pth"
    body = {"best_model": False, "latest_model": True, "file_lists": ["/checkpoints/epoch_9.npz"]}
    assert selection(paths, body, best_model) == [
        "checkpoints/epoch_010.npz",
        "checkpoints/epoch_9.npz",
    ]
    with pytest.raises(ApiError):
        selection(paths, {**body, "best_model": True}, best_model)
    # no file named best: the epoch that scored best on the entry's metric (TAO's way)
    events = [
        {"epoch": 9, "kpi": {"val_mAP": "0.41"}},
        {"epoch": 10, "kpi": {"val_mAP": 0.38, "train_loss": 0.2}},
        {"epoch": 11, "kpi": {"val_mAP": 0.9}},  # no checkpoint of epoch 11: not a candidate
        {"epoch": 10, "kpi": {"train_loss": 0.1}},
    ]
    assert best_by_metric(paths, events, "val_mAP", "maximize") == "checkpoints/epoch_9.npz"
    assert best_by_metric(paths, events, "train_loss", "minimize") == "checkpoints/epoch_010.npz"
    assert best_by_metric(paths, events, "val_accuracy", "maximize") is None
