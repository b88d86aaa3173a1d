"""Backup and restore: admin only, credentials stay encrypted, a bad file
changes nothing, and backup -> wipe -> restore gives back every document
(with jobs still downloadable), through a real worker and a real S3 bucket."""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
import uuid

import pytest

from jobyard.backends.storage.file import FileStorage
from jobyard.store import connect
from jobyard.store.backups import EXCLUDED, BackupError
from jobyard.store.catalog import REFERENCE
from jobyard.store.crypto import Cipher
from jobyard.workers import maintenance
from tests.helpers import assert_error, on_both_servers, wait_for

pytestmark = pytest.mark.integration


def snapshot(db):
    """Every document of the state a backup holds; the built-in catalog entries are the
    release's, written at every start-up (a wiped deployment has them again before any
    restore), not state of an org's."""
    return {
        name: list(
            db[name].find({"builtin": {"$ne": True}} if name == "catalog" else {}).sort("_id", 1)
        )
        for name in sorted(db.list_collection_names())
        if name not in EXCLUDED
    }


def _noop(_):
    return None


@pytest.fixture
def seeded(store):
    """Two orgs with users, keys, workspaces (with secrets), datasets, binary logs and a
    template with an older version."""
    for org in ("acme", "other"):
        user = store.accounts.ensure_user(org, "alice", is_admin=True)
        store.accounts.create_key(user)
        details = {
            "access_key": "AKIA-PLAIN",
            "secret_key": "S3CRET",
            "region": "r",
            "bucket_name": "b",
        }
        store.workspaces.create(
            org, user.id, {"name": "w", "cloud_type": "aws", "cloud_specific_details": details}
        )
        dataset = {"name": "d", "type": "vlm", "format": "default", "client_secret": "hush"}
        store.datasets.create(org, user.id, dataset, "starting", False)
        store.logs.append(f"job-{org}", org, 1, 0, b"\x00binary log\xff")
        spec = {"spec": {"kind": "experiment", "action": "train"}}
        made = store.templates.create(org, "alice", "training", {"name": "t"}, spec)
        store.templates.update(made, {"name": "t", "description": "v2"}, spec, "alice")
    return store


@on_both_servers
def test_backup_keeps_secrets_encrypted_and_restore_brings_every_document_back(seeded, tmp_path):
    store = seeded
    files = FileStorage(tmp_path)
    before = snapshot(store.db)
    summary = maintenance.backup(store, files, "all.gz", None, _noop)
    assert summary["documents"] == sum(len(v) for v in before.values())
    text = gzip.decompress((tmp_path / "all.gz").read_bytes()).decode()
    assert "S3CRET" not in text and "AKIA-PLAIN" not in text and "hush" not in text
    assert text.count('"secrets_enc": "') == 4  # two workspaces, two datasets: ciphertext
    for name in before:
        store.db[name].drop()
    maintenance.restore(store, files, "all.gz", None, _noop)
    assert snapshot(store.db) == before


@on_both_servers
def test_an_org_backup_restores_that_org_only(seeded, tmp_path):
    store = seeded
    files = FileStorage(tmp_path)
    maintenance.backup(store, files, "acme.gz", "acme", _noop)
    other_before = {
        k: [d for d in v if d.get("org", d["_id"]) == "other"]
        for k, v in snapshot(store.db).items()
    }
    acme_before = snapshot(store.db)
    store.db["datasets"].delete_many({"org": "acme"})
    store.db["workspaces"].update_many({"org": "acme"}, {"$set": {"name": "changed"}})
    store.db["datasets"].insert_one({"_id": "new-other", "org": "other", "name": "x"})
    # the operator (org None) restoring an org's backup replaces that org only, too
    maintenance.restore(store, files, "acme.gz", None, _noop)
    after = snapshot(store.db)

    def acme(snap):
        return {k: [d for d in v if d.get("org", d["_id"]) == "acme"] for k, v in snap.items()}

    assert acme(after) == acme(acme_before)
    assert [d["_id"] for d in after["datasets"] if d["org"] == "other"] == sorted(
        [d["_id"] for d in other_before["datasets"]] + ["new-other"]
    )


@on_both_servers
@pytest.mark.parametrize(
    ("org", "cipher_key", "damage", "fragment"),
    [
        ("other", None, None, "backup of org acme"),
        ("acme", Cipher.generate_key(), None, "another JOBYARD_ENCRYPTION_KEY"),
        ("acme", None, "truncate", "truncated"),
        ("acme", None, "garbage", "damaged or not gzip"),
    ],
    ids=["other-org", "other-key", "truncated", "garbage"],
)
def test_a_bad_backup_is_refused_and_changes_nothing(
    seeded, settings, tmp_path, org, cipher_key, damage, fragment
):
    store = seeded
    files = FileStorage(tmp_path)
    maintenance.backup(store, files, "acme.gz", "acme", _noop)
    path = tmp_path / "acme.gz"
    if damage == "truncate":
        raw = gzip.decompress(path.read_bytes())
        path.write_bytes(gzip.compress(raw[: raw.rindex(b'{"end"')]))
    elif damage == "garbage":
        path.write_bytes(b"not a backup")
    target = store
    if cipher_key is not None:
        target = connect(settings.mongo_uri, settings.mongo_db, Cipher(cipher_key))
    before = snapshot(store.db)
    with pytest.raises(BackupError, match=fragment):
        maintenance.restore(target, files, "acme.gz", org, _noop)
    assert snapshot(store.db) == before


def test_backup_and_restore_need_an_admin(login, seaweed_workspace):
    user = login()
    ws = seaweed_workspace(user)
    for action in ("backup", "restore"):
        body = {"backup_file_name": "b.gz"}
        assert_error(user.call("POST", f"workspaces/{ws['id']}:{action}", json=body), 403)
        assert_error(user.call("GET", f"workspaces/{ws['id']}:{action}"), 403)


@pytest.mark.parametrize("name", ["", "../up.gz", "/abs.gz", "a b.gz", "x" * 256])
def test_bad_backup_file_names_are_400(login, seaweed_workspace, name):
    admin = login(admin=True)
    ws = seaweed_workspace(admin)
    response = admin.call("POST", f"workspaces/{ws['id']}:backup", json={"backup_file_name": name})
    assert_error(response, 400)


def test_restore_of_a_missing_file_is_404_at_once(login, seaweed_workspace):
    admin = login(admin=True)
    ws = seaweed_workspace(admin)
    response = admin.call(
        "POST", f"workspaces/{ws['id']}:restore", json={"backup_file_name": "never-made.gz"}
    )
    assert "never-made.gz" in assert_error(response, 404)["error_desc"]
    assert_error(admin.call("GET", f"workspaces/{ws['id']}:restore"), 404)


def _train(s, workspace):
    specs = REFERENCE.default_spec("train")
    specs["train"].update(num_epochs=2)
    body = {
        "kind": "experiment",
        "network_arch": "classification_pyt",
        "action": "train",
        "name": f"t-{uuid.uuid4().hex[:6]}",
        "specs": specs,
        "workspace": workspace,
    }
    response = s.call("POST", "jobs", json=body)
    assert response.status_code == 201, response.json
    job_id = response.json["id"]

    def done():
        job = s.call("GET", f"jobs/{job_id}").json
        assert job["status"] not in {"Error", "Canceled"}, job["job_details"]
        return job["status"] == "Done"

    wait_for(done, 120, f"train job {job_id} Done")
    return job_id


def _until_finished(s, path):
    def check():
        op = s.call("GET", path).json
        return op if op["status"] in {"Done", "Error"} else None

    op = wait_for(check, 60, f"{path} finished", interval=0.2)
    assert op["status"] == "Done", op
    return op


def test_backup_wipe_restore_gives_back_every_document_and_downloads_work(
    login, store, settings, worker, s3_server, bucket, seaweed_workspace
):
    worker()
    admin = login(admin=True)
    ws = seaweed_workspace(admin)
    dataset = admin.call(
        "POST",
        "datasets",
        json={"name": "d", "type": "vlm", "format": "default", "client_secret": "hush"},
    )
    assert dataset.status_code == 201
    job_id = _train(admin, ws["id"])
    # the worker copies the results to the workspace once the job is done
    wait_for(
        lambda: (store.jobs.find(job_id).get("artifacts") or {}).get("complete"),
        60,
        "results uploaded to the workspace",
    )
    seen = admin.call("GET", f"jobs/{job_id}:file_transfers").json
    transfer = seen["transfer"]
    assert transfer["percent"] == 100.0 and transfer["files_done"] == transfer["files_total"]
    assert seen["artifacts"]["prefix"] == f"results/{job_id}" and seen["artifacts"]["complete"]
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert f"results/{job_id}/model_best.npz" in keys
    template = {"meta": {"name": "t"}, "spec": {"kind": "experiment", "action": "train"}}
    made = admin.call("POST", "workload-templates/trainings", json=template).json
    changed = {"meta": {"description": "v2"}}
    admin.call("PATCH", f"workload-templates/trainings/{made['meta']['id']}", json=changed)
    before = snapshot(store.db)
    assert before["templates"] and before["template_versions"]

    started = admin.call(
        "POST",
        f"workspaces/{ws['id']}:backup",
        json={"backup_file_name": "mongodb_backup_20251110.gz"},
    )
    assert started.status_code == 202 and started.json["status"] == "Pending"
    op = _until_finished(admin, f"workspaces/{ws['id']}:backup")
    assert op["progress"]["documents"] == sum(len(v) for v in before.values())
    dump = s3_server.client().get_object(Bucket=bucket, Key="mongodb_backup_20251110.gz")
    text = gzip.decompress(dump["Body"].read()).decode()
    assert s3_server.secret_key not in text and "hush" not in text

    store.db.client.drop_database(store.db.name)  # the wipe
    store.ensure_indexes()
    admin = login(admin=True, user="rescuer")  # accounts went with the wipe
    fresh = seaweed_workspace(admin)  # TAO: a workspace on the bucket holding the backup
    started = admin.call(
        "POST",
        f"workspaces/{fresh['id']}:restore",
        json={"backup_file_name": "mongodb_backup_20251110.gz"},
    )
    assert started.status_code == 202, started.json
    _until_finished(admin, f"workspaces/{fresh['id']}:restore")

    assert snapshot(store.db) == before
    shutil.rmtree(settings.runs_dir / job_id / "results")  # the backend's copy is gone too
    download = admin.call("GET", f"jobs/{job_id}:download")
    assert download.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(download.get_data()), mode="r:gz") as tar:
        names = tar.getnames()
    assert f"{job_id}/model_best.npz" in names and f"{job_id}/logs_from_toolkit.txt" in names


def _cli(settings, *args):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
    env.update(
        {
            "JOBYARD_DATA_DIR": str(settings.data_dir),
            "JOBYARD_MONGO_URI": str(settings.mongo_uri),
            "JOBYARD_MONGO_DB": settings.mongo_db,
            "JOBYARD_ENCRYPTION_KEY": str(settings.encryption_key),
            "JOBYARD_JWT_SECRET": str(settings.jwt_secret),
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "jobyard.cli", "admin", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@on_both_servers
def test_admin_command_backs_up_and_restores_the_whole_deployment(seeded, settings, tmp_path):
    store = seeded
    before = snapshot(store.db)
    made = _cli(settings, "backup", "all.gz", "--dir", str(tmp_path))
    assert made.returncode == 0, made.stderr
    assert '"status": "Done"' in made.stdout and (tmp_path / "all.gz").is_file()
    store.db.client.drop_database(store.db.name)
    restored = _cli(settings, "restore", "all.gz", "--dir", str(tmp_path))
    assert restored.returncode == 0, restored.stderr
    assert snapshot(store.db) == before
    missing = _cli(settings, "restore", "nope.gz", "--dir", str(tmp_path))
    assert missing.returncode == 1 and "restore failed" in missing.stderr
