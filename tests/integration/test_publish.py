"""Publishing models into the org's registry (seed 000's ``:publish_model`` and
``:remove_published_model``) on the embedded default: a real worker trains, the API copies
the checkpoint into a local workspace, the catalog lists the model, a train job starts
from its weights, and removal takes it out of the list and the storage."""

from __future__ import annotations

import hashlib
import io

import pytest

from jobyard.api import publish
from jobyard.backends.storage import StorageError
from jobyard.store.catalog import REFERENCE
from tests.helpers import assert_error
from tests.integration.test_engine import derived, train, until_status

pytestmark = pytest.mark.integration

SEED_BODY = {  # seed 000, "Publish Model", as written
    "display_name": "RT-DETR Production Model v1.0",
    "description": "Trained RT-DETR model for object detection",
    "team": "ml_team",
}


def workspace(s, name="models"):
    response = s.call("POST", "workspaces", json={"name": name, "cloud_type": "local"})
    assert response.status_code == 201, response.json
    return response.json["id"]


def kpi(job, metric="val_accuracy"):
    return {k["metric"]: k["value"] for k in job["job_details"]["kpi"]}[metric]


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def from_model(s, model_id, epochs, pace=0.0, **train_fields):
    specs = s.call("GET", f"jobs:schema?action=train&base_experiment_id={model_id}").json
    body = specs["default"]
    body["train"].update(num_epochs=epochs, min_epoch_seconds=pace, **train_fields)
    response = s.call(
        "POST",
        "jobs",
        json={
            "kind": "experiment",
            "action": "train",
            "base_experiment_ids": [model_id],
            "specs": body,
        },
    )
    assert response.status_code == 201, response.json
    return response.json["id"]


def test_publish_list_train_from_it_and_remove(login, worker, settings):
    s = login()
    ws = workspace(s)
    worker()
    source = until_status(s, train(s, epochs=10, workspace=ws), "Done")

    published = s.call("POST", f"jobs/{source['id']}:publish_model", json=SEED_BODY)
    assert published.status_code == 201, published.json
    model = published.json
    assert model["name"] == "rt-detr-production-model-v1.0" and model["version"] == 1
    assert model["display_name"] == SEED_BODY["display_name"] and model["team"] == "ml_team"
    assert model["state"] == "published" and model["source_job_id"] == source["id"]
    assert model["checkpoint"] == "model_best.npz"
    assert model["metrics"]["val_accuracy"] == kpi(source)
    # the copy is byte for byte the job's best checkpoint, under models/<org>/<name>/<v>/
    (original,) = settings.data_dir.rglob(f"{source['id']}/results/model_best.npz")
    (copied,) = settings.data_dir.rglob(f"models/acme/{model['name']}/1/model_best.npz")
    assert model["sha256"] == sha256(original) == sha256(copied)
    assert model["size"] == original.stat().st_size
    assert {f["name"] for f in model["files"]} == {"model_best.npz", "specs.json", "model.json"}
    assert model["location"] == f"models/acme/{model['name']}/1"

    # the same checkpoint again: a 409 naming version 1; force_create makes version 2
    again = assert_error(s.call("POST", f"jobs/{source['id']}:publish_model", json=SEED_BODY), 409)
    assert "version 1" in again["error_desc"] and model["id"] in again["error_desc"]
    second = s.call(
        "POST", f"jobs/{source['id']}:publish_model", json={**SEED_BODY, "force_create": True}
    )
    assert second.status_code == 201 and second.json["version"] == 2
    assert second.json["id"] != model["id"]

    # the registry and the catalog list it
    listed = s.call("GET", "models?name=rt-detr&sortBy=version&sortOrder=asc").json["models"]
    assert [m["version"] for m in listed] == [1, 2]
    assert s.call("GET", "models?team=other").json["models"] == []
    assert s.call("GET", f"models/{model['id']}").json["sha256"] == model["sha256"]
    entries = s.call("GET", "jobs:list_base_experiments").json["base_experiments"]
    shown = {e["id"]: e for e in entries}
    assert shown[model["id"]]["published_model"] is True
    assert shown[model["id"]]["network_arch"] == "classification_pyt"
    assert shown[REFERENCE.id]["published_model"] is False
    # a job naming only the network still runs the built-in entry, not the org's model
    plain = s.call(
        "POST",
        "jobs",
        json={"kind": "experiment", "action": "train", "network_arch": "classification_pyt"},
    )
    assert plain.json["base_experiment_ids"] == [REFERENCE.id]
    s.call("POST", f"jobs/{plain.json['id']}:cancel")

    # a train job from the published model starts from its weights: one epoch of it (at a
    # slow learning rate) is far above one from scratch. While it runs, it keeps the model.
    slow = 0.01
    warm = from_model(s, model["id"], epochs=1, pace=1.0, learning_rate=slow)
    busy = assert_error(
        s.call("POST", f"jobs/{source['id']}:remove_published_model", json={"team": "ml_team"}),
        409,
    )
    assert warm in busy["error_desc"]
    warm_job = until_status(s, warm, "Done")
    cold_specs = REFERENCE.default_spec("train")
    cold_specs["train"].update(num_epochs=1, learning_rate=slow)
    cold_job = until_status(s, train(s, specs=cold_specs), "Done")
    assert kpi(warm_job) > kpi(cold_job) + 0.3, (kpi(warm_job), kpi(cold_job))
    assert kpi(warm_job) > kpi(source) - 0.05
    events = s.call("GET", f"jobs/{warm}:events").json["events"]
    assert any("pretrained weights of model_best.npz" in line for line in events), events
    # the model's train defaults are the published specs
    defaults = s.call("GET", f"jobs:schema?action=train&base_experiment_id={model['id']}").json
    assert defaults["default"]["train"]["num_epochs"] == 10

    # a published entry is the registry's: the catalog API does not delete it
    admin = login(admin=True, user="root")
    assert (
        "remove_published_model"
        in assert_error(admin.call("DELETE", f"base_experiments/{model['id']}"), 409)["error_desc"]
    )
    removed = s.call(
        "POST", f"jobs/{source['id']}:remove_published_model", json={"team": "ml_team"}
    )
    assert removed.status_code == 200, removed.json
    assert [m["version"] for m in removed.json["removed"]] == [1, 2]
    assert s.call("GET", "models").json["models"] == []
    assert_error(s.call("GET", f"models/{model['id']}"), 404)
    entries = s.call("GET", "jobs:list_base_experiments").json["base_experiments"]
    assert model["id"] not in {e["id"] for e in entries}
    assert not copied.exists() and not list(settings.data_dir.rglob("models/acme/*/*/*"))
    gone = s.call(
        "POST",
        "jobs",
        json={"kind": "experiment", "action": "train", "base_experiment_ids": [model["id"]]},
    )
    assert gone.status_code == 400 and "not found" in gone.json["error_desc"]
    assert_error(s.call("POST", f"jobs/{source['id']}:remove_published_model", json={}), 404)


def partial_copy(storage, model, checkpoint, specs):
    storage.upload(f"{model['location']}/{checkpoint.name}", io.BytesIO(b"half"), 4)
    raise StorageError("the disk filled up")


def test_a_failed_or_killed_publish_leaves_no_model_and_is_finished_by_a_retry(
    login, worker, settings, monkeypatch
):
    s = login()
    ws = workspace(s)
    worker()
    job = until_status(s, train(s, epochs=2, workspace=ws), "Done")
    folders = settings.data_dir / "workspaces"

    # a copy that fails cleans up: no files, no version taken
    monkeypatch.setattr(publish, "_copy", partial_copy)
    assert_error(s.call("POST", f"jobs/{job['id']}:publish_model", json=SEED_BODY), 502)
    assert s.call("GET", "models").json["models"] == []
    assert not list(folders.rglob("model_best.npz"))

    # killed midway, as if the API process died (no cleanup runs): the registry shows it
    # publishing, and nothing lists or runs it
    monkeypatch.setattr(publish, "_discard", lambda storage, doc: None)
    killed = s.call("POST", f"jobs/{job['id']}:publish_model", json=SEED_BODY)
    assert killed.status_code == 502
    (stuck,) = s.call("GET", "models").json["models"]
    assert stuck["state"] == "publishing" and stuck["version"] == 1
    listed = s.call("GET", "jobs:list_base_experiments").json["base_experiments"]
    assert stuck["id"] not in {e["id"] for e in listed}
    refused = s.call(
        "POST",
        "jobs",
        json={"kind": "experiment", "action": "train", "base_experiment_ids": [stuck["id"]]},
    )
    assert refused.status_code == 400
    # the workspace holds its (partial) files: it cannot be deleted meanwhile
    assert (
        "published models" in assert_error(s.call("DELETE", f"workspaces/{ws}"), 409)["error_desc"]
    )

    # publishing the same checkpoint again finishes that version, with the whole file
    monkeypatch.undo()
    done = s.call("POST", f"jobs/{job['id']}:publish_model", json=SEED_BODY)
    assert done.status_code == 201, done.json
    assert done.json["id"] == stuck["id"] and done.json["version"] == 1
    (original,) = settings.data_dir.rglob(f"{job['id']}/results/model_best.npz")
    (copied,) = folders.rglob("models/acme/*/1/model_best.npz")
    assert sha256(copied) == sha256(original) == done.json["sha256"]
    assert s.call("POST", f"jobs/{job['id']}:remove_published_model").status_code == 200
    assert s.call("DELETE", f"workspaces/{ws}").status_code == 200


def test_publish_refuses_what_it_cannot_publish(login, worker, store):
    s, other = login(), login("globex", user="bob")
    ws = workspace(s)
    pending = train(s, epochs=3, pace=0.5, workspace=ws)
    error = assert_error(s.call("POST", f"jobs/{pending}:publish_model", json=SEED_BODY), 409)
    assert "only a Done job" in error["error_desc"]
    assert_error(s.call("POST", f"jobs/{pending}:publish_model", json={"tam": "x"}), 400)
    assert_error(
        s.call("POST", f"jobs/{pending}:publish_model", json={"display_name": "x" * 501}), 400
    )
    assert_error(
        s.call("POST", f"jobs/{pending}:publish_model", json={"team": "a", "team_name": "b"}), 400
    )
    # another org sees neither the job nor its models
    assert_error(other.call("POST", f"jobs/{pending}:publish_model", json=SEED_BODY), 404)
    worker()
    done = until_status(s, pending, "Done")
    bare = until_status(s, train(s, epochs=1), "Done")
    error = assert_error(s.call("POST", f"jobs/{bare['id']}:publish_model", json={}), 400)
    assert "workspace" in error["error_desc"]
    theirs = workspace(other, "theirs")
    assert_error(
        s.call("POST", f"jobs/{bare['id']}:publish_model", json={"workspace": theirs}), 404
    )
    error = assert_error(
        s.call(
            "POST",
            f"jobs/{done['id']}:publish_model",
            json={"checkpoint_choose_method": "from_epoch_number", "checkpoint_epoch_number": 7},
        ),
        400,
    )
    assert "epoch 7" in error["error_desc"]
    evaluate = derived(s, "evaluate", done["id"])
    until_status(s, evaluate, "Done")
    error = assert_error(s.call("POST", f"jobs/{evaluate}:publish_model", json={}), 400)
    assert "only train, retrain, export" in error["error_desc"]
    # an export job publishes its exported file; no body at all is seed 001's defaults
    export = s.call(
        "POST",
        "jobs",
        json={
            "kind": "experiment",
            "action": "export",
            "parent_job_id": done["id"],
            "workspace": ws,
            "specs": {"export": {"format": "npz"}},
        },
    ).json["id"]
    until_status(s, export, "Done")
    published = s.call("POST", f"jobs/{export}:publish_model")
    assert published.status_code == 201, published.json
    assert (
        published.json["checkpoint"] == "model.npz" and published.json["source_action"] == "export"
    )
    mine = published.json["id"]
    assert_error(other.call("GET", f"models/{mine}"), 404)
    assert other.call("GET", "models").json["models"] == []
    assert mine not in {
        e["id"] for e in other.call("GET", "jobs:list_base_experiments").json["base_experiments"]
    }
    assert_error(other.call("POST", f"jobs/{export}:remove_published_model", json={}), 404)
    assert_error(
        s.call("POST", f"jobs/{export}:remove_published_model", json={"team": "nobody"}), 404
    )
    assert s.call("POST", f"jobs/{export}:remove_published_model").status_code == 200


def test_an_automl_search_publishes_its_best_trials_model_and_specs(login, worker, store):
    s = login()
    ws = workspace(s)
    worker()
    settings = {
        "automl_enabled": True,
        "automl_algorithm": "bayesian",
        "automl_max_recommendations": 3,
        "automl_max_concurrent": 3,
    }
    search = until_status(s, train(s, epochs=2, workspace=ws, automl_settings=settings), "Done")
    best = search["job_details"]["automl"]["best"]
    trial = store.jobs.find(best["job_id"])
    model = s.call("POST", f"jobs/{search['id']}:publish_model", json={"display_name": "tuned"})
    assert model.status_code == 201, model.json
    trial_files = s.call("POST", f"jobs/{best['job_id']}:list_files", json={}).json
    assert model.json["checkpoint"] == "model_best.npz" and "model_best.npz" in trial_files
    # the published train defaults are the best trial's hyperparameters, not the search's
    defaults = s.call(
        "GET", f"jobs:schema?action=train&base_experiment_id={model.json['id']}"
    ).json["default"]
    assert defaults == trial["specs"] != search["specs"]
    assert model.json["metrics"]["val_accuracy"] == pytest.approx(best["value"])
