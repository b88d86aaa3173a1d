"""Fields seeds 000 and 001 document, honoured: top-level ``platform_id``/``num_gpu``,
``docker_env_vars`` and ``encryption_key`` reaching the workload (and nothing else),
``checkpoint_choose_method`` choosing the parent checkpoint, ``:get_epoch_numbers``
answering under ``data``."""

from __future__ import annotations

import hashlib
import json

import pytest

from jobyard.schemas.catalog import load_entry
from jobyard.store.catalog import REFERENCE
from tests.helpers import assert_error
from tests.integration.test_engine import train, until_status

pytestmark = pytest.mark.integration

TOKEN = "hf_s3cr3t-value-9d1c"
KEY = "tlt_encode_42"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# prints digests of what it was given (never the values): the environment and the spec file
PROBE = (
    "import hashlib, json, os, sys; h = lambda t: hashlib.sha256(t.encode()).hexdigest(); "
    "spec = json.load(open(sys.argv[1])); "
    "print('env', h(os.environ.get('HF_TOKEN', '')), h(os.environ.get('JY_ENCRYPTION_KEY', ''))); "
    "print('spec', h(spec.get('model_key', ''))); "
    "print('override', os.environ.get('JY_RESULTS_DIR') == sys.argv[2])"
)


def probe_entry(store):
    entry = load_entry(
        {
            "network_arch": "probe",
            "name": "env_probe",
            "command": ["{python}", "-c", PROBE, "{spec_file}", "{results_dir}"],
            "encryption_key_field": "model_key",
            "actions": {"train": {"default_spec": {}}},
        }
    )
    store.catalog.put(entry)
    return entry


def test_top_level_platform_id_and_num_gpu_mean_backend_details(login):
    s = login()
    body = {"kind": "experiment", "action": "train", "network_arch": "classification_pyt"}
    job = s.call("POST", "jobs", json={**body, "platform_id": "ng-a100", "num_gpu": 0}).json
    assert job["backend_details"] == {
        "backend_type": "local",
        "platform_id": "ng-a100",
        "num_gpus": 0,
    }
    clash = {**body, "num_gpu": 2, "backend_details": {"backend_type": "local", "num_gpus": 1}}
    refused = assert_error(s.call("POST", "jobs", json=clash), 400)
    assert refused["error_desc"] == "num_gpu=2 disagrees with backend_details.num_gpus"


def test_docker_env_vars_and_the_key_reach_the_workload_only(login, worker, store, tmp_path):
    s = login()
    probe_entry(store)
    body = {
        "kind": "experiment",
        "action": "train",
        "network_arch": "probe",
        "encryption_key": KEY,
        "docker_env_vars": {"HF_TOKEN": TOKEN},
    }
    created = s.call("POST", "jobs", json=body)
    assert created.status_code == 201, created.json
    job = created.json
    assert job["docker_env_vars"] == {"HF_TOKEN": "********"}
    assert "encryption_key" not in job and "secrets_enc" not in job
    stored = json.dumps(store.jobs.find(job["id"]), default=str)
    assert TOKEN not in stored and KEY not in stored  # encrypted at rest
    worker()
    until_status(s, job["id"], "Done")
    log = s.call("GET", f"jobs/{job['id']}:logs").get_data(as_text=True)
    assert f"env {digest(TOKEN)} {digest(KEY)}" in log, log
    assert f"spec {digest(KEY)}" in log  # encryption_key_field: the key in the spec too
    assert "override True" in log
    shown = json.dumps(s.call("GET", f"jobs/{job['id']}").json)
    events = json.dumps(s.call("GET", f"jobs/{job['id']}:events?detailed=true").json)
    for text in (shown, events, log, (tmp_path / "worker0.log").read_text()):
        assert TOKEN not in text and KEY not in text


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("JY_RESULTS_DIR", "JY_RESULTS_DIR is reserved"),
        ("JOBYARD_MONGO_URI", "JOBYARD_MONGO_URI is reserved"),
        ("not a name", "'not a name' is not an environment variable name"),
    ],
)
def test_docker_env_vars_cannot_pose_as_the_contract(login, name, expected):
    s = login()
    body = {
        "kind": "experiment",
        "action": "train",
        "network_arch": "classification_pyt",
        "docker_env_vars": {name: "x"},
    }
    refused = assert_error(s.call("POST", "jobs", json=body), 400)
    assert expected in json.dumps(refused["errors"]["docker_env_vars"])


def test_checkpoint_choose_method_picks_the_parents_checkpoint(login, worker):
    s = login()
    worker()
    parent = train(s, epochs=3, retain_checkpoints_for_resume=True)
    until_status(s, parent, "Done")
    epochs = s.call("GET", f"jobs/{parent}:get_epoch_numbers").json
    assert epochs == {"epoch_numbers": [1, 2, 3], "data": [1, 2, 3]}
    body = {
        "kind": "experiment",
        "network_arch": "classification_pyt",
        "action": "evaluate",
        "parent_job_id": parent,
        "specs": REFERENCE.default_spec("evaluate"),
    }
    chosen = {"checkpoint_choose_method": "from_epoch_number", "checkpoint_epoch_number": 2}
    job = s.call("POST", "jobs", json={**body, **chosen}).json
    assert job["parent_checkpoint"] == "checkpoints/epoch_002.npz"
    until_status(s, job["id"], "Done")
    log = s.call("GET", f"jobs/{job['id']}:logs").get_data(as_text=True)
    assert "checkpoints/epoch_002.npz (trained epochs: 2)" in log, log
    # TAO's object form, keyed by the parent's id
    keyed = {**chosen, "checkpoint_epoch_number": {f"from_epoch_number_{parent}": 3}}
    again = s.call("POST", "jobs", json={**body, **keyed, "name": "e3"}).json
    assert again["parent_checkpoint"] == "checkpoints/epoch_003.npz"
    best = s.call("POST", "jobs", json={**body, "checkpoint_choose_method": "best_model"}).json
    assert best["parent_checkpoint"] == "model_best.npz"
    missing = s.call("POST", "jobs", json={**body, **chosen, "checkpoint_epoch_number": 9})
    message = assert_error(missing, 400)["error_desc"]
    assert message == (
        f"parent job {parent} has no checkpoint of epoch 9 (epochs with a checkpoint: 1, 2, 3; "
        "see :get_epoch_numbers)"
    )
    no_epoch = s.call(
        "POST", "jobs", json={**body, "checkpoint_choose_method": "from_epoch_number"}
    )
    assert "from_epoch_number needs checkpoint_epoch_number" in json.dumps(
        assert_error(no_epoch, 400)
    )
