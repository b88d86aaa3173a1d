"""Default specs, their JSON Schemas, and the dependency-free validator."""

from __future__ import annotations

import json

import pytest

from jobyard.workloads import specs


@pytest.mark.parametrize("action", specs.ACTIONS)
def test_defaults_validate(action):
    assert specs.validate(action, specs.default_spec(action)) == []


def test_actions_are_the_four_tao_experiment_actions_and_two_dataset_actions():
    assert specs.EXPERIMENT_ACTIONS == ("train", "evaluate", "export", "inference")
    assert specs.DATASET_ACTIONS == ("convert", "validate")
    assert specs.ACTIONS == specs.EXPERIMENT_ACTIONS + specs.DATASET_ACTIONS


def test_train_default_has_the_documented_shape():
    assert specs.default_spec("train") == {
        "train": {
            "num_epochs": 10,
            "num_gpus": 1,
            "batch_size": 64,
            "learning_rate": 0.1,
            "momentum": 0.9,
            "checkpoint_interval": 1,
            "seed": 42,
            "min_epoch_seconds": 0.0,
            "early_stop_epoch": None,
            "retain_checkpoints_for_resume": False,
        },
        "model": {"hidden_size": 64},
        "dataset": {"val_split": 0.2},
    }
    assert specs.default_spec("export") == {"export": {"format": "json"}}


def test_dataset_action_defaults_have_the_documented_shape():
    assert specs.default_spec("convert") == {
        "convert": {
            "input_format": "auto",
            "invert": "auto",
            "shuffle": False,
            "seed": 42,
            "image_size": 8,
        }
    }
    assert specs.default_spec("validate") == {
        "validate": {"input_format": "auto", "allow_duplicates": False}
    }
    inverted = specs.default_spec("convert")
    inverted["convert"]["invert"] = True
    assert specs.validate("convert", inverted) == []
    inverted["convert"].update(invert="yes", image_size=16)
    errors = specs.validate("convert", inverted)
    assert [e.split(":")[0] for e in errors] == ["convert.invert", "convert.image_size"]


def test_jq_style_edit_validates():
    # jq '.train.num_epochs=10 | .train.num_gpus=2', round-tripped through JSON like jq does.
    spec = json.loads(json.dumps(specs.default_spec("train")))
    spec["train"]["num_epochs"] = 10
    spec["train"]["num_gpus"] = 2
    assert specs.validate("train", spec) == []


def test_default_spec_returns_independent_copies():
    first = specs.default_spec("train")
    first["train"]["num_epochs"] = 999
    assert specs.default_spec("train")["train"]["num_epochs"] == 10


def _with(action, section, **values):
    spec = specs.default_spec(action)
    spec[section].update(values)
    return spec


@pytest.mark.parametrize(
    ("spec", "path", "fragment"),
    [
        (_with("train", "train", num_epochs="10"), "train.num_epochs", "expected integer"),
        (_with("train", "train", num_epochs=2.5), "train.num_epochs", "expected integer"),
        (_with("train", "train", num_epochs=True), "train.num_epochs", "got boolean"),
        (_with("train", "train", learning_rate="0.1"), "train.learning_rate", "expected number"),
        (_with("train", "train", early_stop_epoch="3"), "train.early_stop_epoch", "or null"),
        (
            _with("train", "train", retain_checkpoints_for_resume=1),
            "train.retain_checkpoints_for_resume",
            "expected boolean",
        ),
        (_with("train", "model", hidden_size=None), "model.hidden_size", "got null"),
    ],
)
def test_wrong_types_name_the_dotted_path(spec, path, fragment):
    errors = specs.validate("train", spec)
    assert len(errors) == 1, errors
    assert errors[0].startswith(path + ": ")
    assert fragment in errors[0]


@pytest.mark.parametrize(
    ("action", "spec", "expected"),
    [
        ("train", _with("train", "train", num_epochs=0), "train.num_epochs: 0 is less than"),
        ("train", _with("train", "train", momentum=1.5), "train.momentum: 1.5 is greater than"),
        ("train", _with("train", "train", early_stop_epoch=0), "train.early_stop_epoch: 0 is less"),
        ("train", _with("train", "dataset", val_split=0.9), "dataset.val_split: 0.9 is greater"),
        ("train", _with("train", "train", learning_rate=float("nan")), "train.learning_rate:"),
        ("export", {"export": {"format": "onnx"}}, "export.format: 'onnx' is not one of"),
        ("inference", _with("inference", "inference", num_samples=0), "inference.num_samples:"),
    ],
)
def test_out_of_range_values_name_the_dotted_path(action, spec, expected):
    errors = specs.validate(action, spec)
    assert len(errors) == 1, errors
    assert errors[0].startswith(expected)


def test_unknown_keys_are_rejected_at_every_level():
    spec = specs.default_spec("train")
    spec["train"]["num_epoch"] = 5  # typo
    spec["extra"] = {}
    errors = specs.validate("train", spec)
    assert sorted(e.split(":")[0] for e in errors) == ["extra", "train.num_epoch"]
    assert all("unknown property" in e for e in errors)


def test_missing_keys_and_non_objects_are_reported():
    spec = specs.default_spec("train")
    del spec["train"]["seed"]
    del spec["model"]
    errors = specs.validate("train", spec)
    assert "train.seed: required property is missing" in errors
    assert "model: required property is missing" in errors
    assert specs.validate("evaluate", []) == ["(root): expected object, got array []"]
    assert specs.validate("evaluate", {"evaluate": 3, "dataset": {"val_split": 0.2}}) == [
        "evaluate: expected object, got integer 3"
    ]


def test_valid_edits_are_accepted():
    spec = _with("train", "train", early_stop_epoch=3, learning_rate=1, min_epoch_seconds=0.3)
    assert specs.validate("train", spec) == []


def test_items_keyword_validates_each_element_with_an_indexed_path():
    schema = {
        "type": "object",
        "properties": {"sizes": {"type": "array", "items": {"type": "integer", "minimum": 1}}},
        "additionalProperties": False,
    }
    assert specs.validate_against(schema, {"sizes": [1, 2]}) == []
    assert specs.validate_against(schema, {"sizes": [1, 0, "x"]}) == [
        "sizes[1]: 0 is less than the minimum 1",
        "sizes[2]: expected integer, got string 'x'",
    ]


@pytest.mark.parametrize("action", specs.ACTIONS)
def test_json_schema_is_closed_and_carries_defaults(action):
    schema = specs.json_schema(action)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    for name, section in schema["properties"].items():
        assert section["additionalProperties"] is False
        assert set(section["required"]) == set(section["properties"])
        defaults = {k: v["default"] for k, v in section["properties"].items()}
        assert defaults == specs.default_spec(action)[name]
    json.dumps(schema)  # serialisable as is


def test_unknown_action_is_an_error():
    with pytest.raises(ValueError, match="unknown action"):
        specs.validate("prune", {})
    with pytest.raises(ValueError, match="unknown action"):
        specs.default_spec("prune")
