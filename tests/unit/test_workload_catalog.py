"""The reference workload's catalog entries: plain data in the catalog entry format whose
specs, parents and hyperparameters agree with what the workload really does."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from jobyard.schemas import dataset as dataset_wire
from jobyard.schemas import job as job_wire
from jobyard.schemas.catalog import load_entry
from jobyard.workloads import catalog, datasets, specs
from tests.unit.workload_runs import Runner

ENTRIES = catalog.reference_entries()
EXPERIMENT, DATASET = ENTRIES


def _ids(entry: dict[str, Any]) -> str:
    return str(entry["name"])


def test_the_entries_keep_the_fields_their_ids_derive_from():
    assert [(e["network_arch"], e["name"], e["ngc_path"]) for e in ENTRIES] == [
        ("classification_pyt", "digits_mlp", "jobyard/classification_pyt:digits_mlp_v1"),
        (
            "image_classification",
            "digits_dataset",
            "jobyard/image_classification:digits_dataset_v1",
        ),
    ]
    assert catalog.reference_entry() == EXPERIMENT
    assert catalog.reference_dataset_entry() == DATASET
    assert [e["kind"] for e in ENTRIES] == ["experiment", "dataset"]


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids)
def test_every_default_spec_is_valid_against_its_json_schema(entry):
    for name, action in entry["actions"].items():
        schema = action["json_schema"]
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema)
        errors = [e.message for e in validator.iter_errors(action["default_spec"])]
        assert errors == [], name
        assert action["default_spec"] == specs.default_spec(name)


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids)
def test_the_catalog_accepts_each_entry_as_it_is(entry):
    loaded = load_entry(entry)
    assert loaded.actions == tuple(entry["actions"]) and loaded.scope == "global"


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids)
def test_actions_and_parents_are_known_actions(entry):
    for name, action in entry["actions"].items():
        assert name in (*job_wire.ACTIONS, job_wire.SERVE_ACTION)
        assert all(p in entry["actions"] for p in action["parents"])
    assert entry["network_arch"] in job_wire.NETWORK_ARCHS
    assert set(entry["dataset_types"]) <= set(dataset_wire.DATASET_TYPES)
    assert set(entry["dataset_formats"]) <= set(dataset_wire.DATASET_FORMATS)
    assert entry["command"] == ["{python}", "-m", "jobyard.workloads.classifier"]
    assert entry["resources"] == {"num_gpus": 0}


def test_the_action_sets_split_into_experiment_and_dataset_actions():
    # serve is the model server's (jobyard.workloads.server), not a classifier action
    assert tuple(EXPERIMENT["actions"]) == (*specs.EXPERIMENT_ACTIONS, "serve")
    assert tuple(DATASET["actions"]) == specs.DATASET_ACTIONS
    assert not set(specs.EXPERIMENT_ACTIONS) & set(specs.DATASET_ACTIONS)
    assert specs.ACTIONS == specs.EXPERIMENT_ACTIONS + specs.DATASET_ACTIONS


def test_derived_actions_read_a_trained_model():
    parents = {name: action["parents"] for name, action in EXPERIMENT["actions"].items()}
    assert parents == {
        "train": [],
        "evaluate": ["train"],
        "export": ["train"],
        "inference": ["train"],
        "serve": ["train"],
    }
    assert all(not action["parents"] for action in DATASET["actions"].values())


def test_convert_produces_a_dataset_from_the_folder_it_writes():
    convert, validate = DATASET["actions"]["convert"], DATASET["actions"]["validate"]
    assert convert["produces_data"] is True and convert["output_dir"] == datasets.OUTPUT_DIR
    assert not validate.get("produces_data", False)


def test_hyperparameters_are_train_spec_keys_within_their_schema():
    schema, default = specs.json_schema("train"), specs.default_spec("train")
    names = []
    for hp in EXPERIMENT["hyperparameters"]:
        section, key = hp["name"].split(".")
        prop = schema["properties"][section]["properties"][key]
        assert prop["type"] == {"float": "number", "int": "integer"}[hp["type"]]
        assert hp["default"] == default[section][key]
        assert prop["minimum"] <= hp["min"] <= hp["default"] <= hp["max"] <= prop["maximum"]
        assert not hp.get("log") or hp["min"] > 0
        names.append(hp["name"])
    tunables = {"train.learning_rate", "train.momentum", "train.batch_size", "model.hidden_size"}
    assert tunables <= set(names)
    by_name = {hp["name"]: hp for hp in EXPERIMENT["hyperparameters"]}
    assert by_name["train.learning_rate"]["log"] is True


def test_metrics_are_what_train_reports_in_kpi(tmp_path, monkeypatch):
    spec = specs.default_spec("train")
    spec["train"]["num_epochs"] = 1
    code, events, _ = Runner(tmp_path, monkeypatch)("train", spec)
    assert code == 0
    per_epoch = next(e for e in events if e.get("status") == "RUNNING" and "epoch" in e)
    assert EXPERIMENT["metric"] in per_epoch["kpi"]
    assert EXPERIMENT["metric"] in EXPERIMENT["metrics"]
    assert set(EXPERIMENT["metrics"]) <= set(events[-1]["kpi"])
