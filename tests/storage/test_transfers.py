"""Results copied to the workspace with progress (workers/transfers.py)."""

from __future__ import annotations

import pytest
import redis as redis_lib

from jobyard.backends.base import Handle, ResultFile
from jobyard.backends.storage import file as file_storage
from jobyard.backends.storage.progress import Progress
from jobyard.store.fingerprint import forced
from jobyard.workers import transfers
from jobyard.workers.context import Context
from tests.helpers import on_both_servers

pytestmark = pytest.mark.integration


def test_progress_reads_like_the_seed():
    p = Progress("upload", files_total=4, bytes_total=2_000_000, started=100.0)
    p.begin_file("train/model_epoch_000.pth", 1_000_000)
    p.moved(8_000)
    snap = p.snapshot(now=101.0)
    assert snap["message"].splitlines() == [
        "Current file upload: train/model_epoch_000.pth",
        "Current file upload Progress: 8.0 KB/1.0 MB (0.8%)",
        "Total Upload Progress: 0/4 files (0.0%), 8.0 KB/2.0 MB (0.4%)",
        "Remaining: 4 files, 2.0 MB, ETA: 0:04:09",
    ]
    assert snap["rate_bytes_per_second"] == 8000.0 and snap["eta_seconds"] == 249.0
    p.moved(992_000)
    p.end_file()
    assert p.snapshot(now=102.0)["files_done"] == 1 and p.snapshot(102.0)["percent"] == 50.0
    assert Progress("upload", 0, 0, 0.0).snapshot(0.0)["eta"] is None


def test_only_new_or_changed_files_go_up_again():
    files = [
        ResultFile("a.npz", 3, 1.0),
        ResultFile("b.npz", 4, 2.0),
        ResultFile(".b.npz.123.tmp", 4, 2.0),
        ResultFile("c.json", 1, 5.0),
    ]
    uploaded = {"a.npz": (3, 1.0), "b.npz": (4, 1.5)}
    assert [f.path for f in transfers.changed(files, uploaded)] == ["b.npz", "c.json"]


@on_both_servers
def test_progress_moves_in_the_job_during_a_slow_upload(
    settings, store, redis_url, tmp_path, monkeypatch, login
):
    results = tmp_path / "runs" / "j" / "results"
    results.mkdir(parents=True)
    (results / "model_best.npz").write_bytes(b"m" * 600_000)
    (results / "small.json").write_bytes(b"{}")
    user = store.accounts.ensure_user("acme", "alice")
    bucket_dir = settings.workspace_root / "acme" / "bucket"
    bucket_dir.mkdir(parents=True)
    details = {"path": str(bucket_dir)}
    local = {"name": "w", "cloud_type": "local", "cloud_specific_details": details}
    ws = store.workspaces.create("acme", user.id, local)
    job = store.jobs.create(
        "acme",
        user.id,
        {"kind": "experiment", "action": "train", "workspace": ws.id},
        "process",
        forced(),
    )
    handle = Handle("process", "jy-j-r1", {"results_dir": str(results)}).to_doc()
    store.db["jobs"].update_one(
        {"_id": job["_id"]}, {"$set": {"handle": handle, "status": "Done", "active": False}}
    )
    ctx = Context(settings, store, redis_lib.Redis.from_url(redis_url), celery=None)

    seen: list[dict] = []
    real_publish = transfers.ProgressPublisher.publish

    def watching(self, force=False):
        real_publish(self, force)
        seen.append(store.jobs.find(job["_id"])["job_details"].get("transfer") or {})

    monkeypatch.setattr(transfers.ProgressPublisher, "publish", watching)
    monkeypatch.setattr(transfers, "PUBLISH_SECONDS", 0.0)
    monkeypatch.setattr(file_storage, "CHUNK", 64 * 1024)  # many small steps

    assert transfers.upload(ctx, job["_id"], final=True) == "uploaded 2"
    done = [s["bytes_done"] for s in seen]
    assert done == sorted(done) and len(set(done)) >= 8, done
    middle = [s for s in seen if 0 < s["percent"] < 100]
    assert middle and all(s["rate_bytes_per_second"] and s["eta"] for s in middle)
    assert seen[-1]["percent"] == 100.0 and seen[-1]["files_done"] == 2
    copied = bucket_dir / "results" / job["_id"] / "model_best.npz"
    assert copied.read_bytes() == (results / "model_best.npz").read_bytes()
    artifacts = store.jobs.find(job["_id"])["artifacts"]
    assert artifacts["complete"] and artifacts["files"] == 2
    shown = login().call("GET", f"jobs/{job['_id']}").json  # what API users see
    assert shown["job_details"]["transfer"]["percent"] == 100.0
    assert shown["artifacts"]["complete"] is True

    seen.clear()
    assert transfers.upload(ctx, job["_id"], final=True) == "uploaded 0"  # nothing changed
    (results / "small.json").write_bytes(b'{"x": 1}')
    assert transfers.upload(ctx, job["_id"], final=True) == "uploaded 1"


class _Celery:
    def __init__(self):
        self.sent = []

    def send_task(self, name, args, queue):
        self.sent.append((name, tuple(args), queue))


def test_schedule_throttles_running_jobs_and_always_sends_finished_ones(settings, store, redis_url):
    redis_lib.Redis.from_url(redis_url).flushall()
    celery = _Celery()
    ctx = Context(settings, store, redis_lib.Redis.from_url(redis_url), celery=celery)
    jobs = []
    for status in ("Running", "Done"):
        job = store.jobs.create(
            "acme",
            "u",
            {"kind": "experiment", "action": "train", "workspace": "w"},
            "process",
            forced(),
        )
        store.db["jobs"].update_one(
            {"_id": job["_id"]}, {"$set": {"status": status, "handle": {"x": 1}}}
        )
        jobs.append(store.jobs.find(job["_id"]))
    no_workspace = store.jobs.create(
        "acme", "u", {"kind": "experiment", "action": "train"}, "process", forced()
    )
    assert transfers.schedule(ctx, [*jobs, no_workspace]) == 2
    assert transfers.schedule(ctx, jobs) == 1  # the running one waits for the throttle
    running, done = jobs[0]["_id"], jobs[1]["_id"]
    assert sorted(celery.sent) == sorted(
        [
            (transfers.TASK, (running, False), "maintenance"),
            (transfers.TASK, (done, True), "maintenance"),
            (transfers.TASK, (done, True), "maintenance"),
        ]
    )


def test_workspaces_without_storage_get_no_upload(settings, store, redis_url):
    ctx = Context(settings, store, redis_lib.Redis.from_url(redis_url), celery=None)
    ws = store.workspaces.create("acme", "u", {"name": "w", "cloud_type": "local"})
    job = store.jobs.create(
        "acme",
        "u",
        {"kind": "experiment", "action": "train", "workspace": ws.id},
        "process",
        forced(),
    )
    store.db["jobs"].update_one(
        {"_id": job["_id"]}, {"$set": {"handle": {"backend": "process", "name": "n", "data": {}}}}
    )
    assert transfers.upload(ctx, job["_id"], final=True) == "no storage"
