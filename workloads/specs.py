"""Per-action default specs, their JSON Schemas, and a small validator for that schema subset.

The defaults are shaped like TAO's (``{"train": {"num_epochs": ...}, ...}``) so the usual
``jq '.train.num_epochs=10'`` edits work. The validator implements just the JSON-Schema
keywords used here (type, properties, required, minimum, maximum, enum,
additionalProperties=false, items) so the workload needs nothing beyond numpy, and it returns
every problem at once, each prefixed by the dotted path of the offending value.
"""

from __future__ import annotations

import copy
import math
from typing import Any

# Experiment actions train and use a model; dataset actions read a dataset (the job's first
# training dataset directory) and, for convert, write a new one.
EXPERIMENT_ACTIONS = ("train", "evaluate", "export", "inference")
DATASET_ACTIONS = ("convert", "validate")
ACTIONS = EXPERIMENT_ACTIONS + DATASET_ACTIONS
EXPORT_FORMATS = ("json", "npz")
CONVERT_FORMATS = ("auto", "image_folder", "csv")
VALIDATE_FORMATS = ("auto", "training", "image_folder", "csv")

Schema = dict[str, Any]


def _integer(default: int | None, minimum: int, maximum: int, description: str) -> Schema:
    return {
        "type": "integer",
        "minimum": minimum,
        "maximum": maximum,
        "default": default,
        "description": description,
    }


def _number(default: float, minimum: float, maximum: float, description: str) -> Schema:
    return {
        "type": "number",
        "minimum": minimum,
        "maximum": maximum,
        "default": default,
        "description": description,
    }


def _object(properties: dict[str, Schema], description: str = "") -> Schema:
    schema: Schema = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def _enum(values: list[Any], default: Any, description: str) -> Schema:
    names = sorted({"boolean" if isinstance(v, bool) else "string" for v in values})
    return {
        "type": names[0] if len(names) == 1 else names,
        "enum": values,
        "default": default,
        "description": description,
    }


def _boolean(default: bool, description: str) -> Schema:
    return {"type": "boolean", "default": default, "description": description}


_VAL_SPLIT = _number(0.2, 0.05, 0.5, "Fraction of each class held out for validation.")

_SCHEMAS: dict[str, Schema] = {
    "train": _object(
        {
            "train": _object(
                {
                    "num_epochs": _integer(10, 1, 999, "Epochs to train in total."),
                    "num_gpus": _integer(
                        1, 1, 64, "Recorded for the scheduler; this CPU trainer ignores it."
                    ),
                    "batch_size": _integer(64, 1, 4096, "Mini-batch size."),
                    "learning_rate": _number(0.1, 1e-6, 10.0, "SGD step size."),
                    "momentum": _number(0.9, 0.0, 0.999, "SGD momentum."),
                    "checkpoint_interval": _integer(
                        1, 1, 999, "Write a checkpoint every this many epochs (and at the end)."
                    ),
                    "seed": _integer(42, 0, 2**32 - 1, "Seeds initialisation and shuffling."),
                    "min_epoch_seconds": _number(
                        0.0, 0.0, 3600.0, "Pad each epoch to at least this long (for demos)."
                    ),
                    "early_stop_epoch": {
                        "type": ["integer", "null"],
                        "minimum": 1,
                        "maximum": 999,
                        "default": None,
                        "description": "Stop successfully after this epoch; null to run all.",
                    },
                    "retain_checkpoints_for_resume": {
                        "type": "boolean",
                        "default": False,
                        "description": "Keep every checkpoints/epoch_NNN.npz, not just the newest.",
                    },
                }
            ),
            "model": _object({"hidden_size": _integer(64, 1, 1024, "Hidden units.")}),
            "dataset": _object({"val_split": _VAL_SPLIT}),
        },
        "Train the digits MLP.",
    ),
    "evaluate": _object(
        {
            "evaluate": _object({"batch_size": _integer(256, 1, 65536, "Evaluation batch size.")}),
            "dataset": _object({"val_split": _VAL_SPLIT}),
        },
        "Evaluate the parent train job's model on the validation split.",
    ),
    "export": _object(
        {
            "export": _object(
                {
                    "format": {
                        "type": "string",
                        "enum": list(EXPORT_FORMATS),
                        "default": "json",
                        "description": "json: portable weights as lists; npz: numpy arrays.",
                    }
                }
            )
        },
        "Export the parent train job's model.",
    ),
    "inference": _object(
        {
            "inference": _object(
                {
                    "batch_size": _integer(256, 1, 65536, "Inference batch size."),
                    "num_samples": _integer(
                        100, 1, 100000, "Validation samples to predict (capped at the split size)."
                    ),
                }
            )
        },
        "Predict validation samples with the parent train job's model.",
    ),
    "convert": _object(
        {
            "convert": _object(
                {
                    "input_format": _enum(
                        list(CONVERT_FORMATS),
                        "auto",
                        "image_folder: one sub-folder of images per class, named 0..9; csv: 64 "
                        "pixel columns and a label column, header optional, pixels 0..16 or "
                        "0..255; auto: csv if the dataset holds a CSV file, else image_folder.",
                    ),
                    "invert": _enum(
                        ["auto", True, False],
                        "auto",
                        "The training data has light digits on a dark background. true: invert "
                        "every image (dark digits on light paper); auto: invert the images whose "
                        "border is light.",
                    ),
                    "shuffle": _boolean(False, "Shuffle the rows (else: class by class)."),
                    "seed": _integer(42, 0, 2**32 - 1, "Seeds the shuffle."),
                    "image_size": {
                        "type": "integer",
                        "enum": [8],
                        "default": 8,
                        "description": "Side of the output images in pixels: the MLP reads 8x8.",
                    },
                }
            )
        },
        "Convert a folder of images or a CSV file into the training format (digits.csv.gz).",
    ),
    "validate": _object(
        {
            "validate": _object(
                {
                    "input_format": _enum(
                        list(VALIDATE_FORMATS),
                        "auto",
                        "training: digits.csv.gz or digits.csv as train reads it (no header, "
                        "integer pixels 0..16); image_folder and csv: as convert reads them; "
                        "auto: training if digits.csv.gz or digits.csv exists, else as convert.",
                    ),
                    "allow_duplicates": _boolean(
                        False, "Report duplicate rows without counting them as a problem."
                    ),
                }
            )
        },
        "Check a dataset: row and per-class counts, malformed rows, empty classes, duplicates.",
    ),
    # the model server (jobyard.workloads.server) takes no spec: the request carries it all
    "serve": _object({}, "Serve the parent train job's model over HTTP."),
}


def _check_action(action: str) -> None:
    if action not in _SCHEMAS:
        raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")


def json_schema(action: str) -> dict[str, Any]:
    """The JSON Schema of ``action``'s spec (a fresh copy; every property carries its default)."""
    _check_action(action)
    schema = copy.deepcopy(_SCHEMAS[action])
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"jobyard.workloads.classifier {action} spec"
    return schema


def _defaults(schema: Schema) -> Any:
    if schema.get("type") == "object":
        return {name: _defaults(sub) for name, sub in schema["properties"].items()}
    return copy.deepcopy(schema.get("default"))


def default_spec(action: str) -> dict[str, Any]:
    """The default spec of ``action`` (a fresh copy, safe to mutate), derived from its schema."""
    _check_action(action)
    spec = _defaults(_SCHEMAS[action])
    assert isinstance(spec, dict)
    return spec


def validate(action: str, spec: Any) -> list[str]:
    """Problems with ``spec`` as a spec for ``action``; an empty list means it is valid."""
    _check_action(action)
    return validate_against(_SCHEMAS[action], spec)


def validate_against(schema: Schema, instance: Any) -> list[str]:
    """Validate ``instance`` against a schema in the supported subset; errors use dotted paths.

    Supported keywords: type (a name or a list of names), properties, required, minimum,
    maximum, enum, additionalProperties (false only) and items (a single schema). Anything
    else, such as default or description, is an annotation and ignored.
    """
    errors: list[str] = []
    _check(schema, instance, "", errors)
    return errors


_TYPE_NAMES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})


def _type_of(value: Any) -> str:
    """The JSON type name of a decoded JSON value (bool is not a number in JSON)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _matches(value: Any, type_name: str) -> bool:
    actual = _type_of(value)
    if type_name == "number":
        return actual in ("integer", "number")
    return actual == type_name


def _where(path: str) -> str:
    return path or "(root)"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check(schema: Schema, value: Any, path: str, errors: list[str]) -> None:
    expected = schema.get("type")
    if expected is not None:
        names = [expected] if isinstance(expected, str) else list(expected)
        unknown = [n for n in names if n not in _TYPE_NAMES]
        if unknown:
            raise ValueError(f"schema at {_where(path)}: unsupported type {unknown}")
        if not any(_matches(value, n) for n in names):
            errors.append(
                f"{_where(path)}: expected {' or '.join(names)}, "
                f"got {_type_of(value)} {_short(value)}"
            )
            return
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(repr(v) for v in schema["enum"])
        errors.append(f"{_where(path)}: {_short(value)} is not one of {allowed}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(schema, value, path, errors)
    if isinstance(value, dict):
        _check_object(schema, value, path, errors)
    if isinstance(value, list | tuple) and "items" in schema:
        for index, item in enumerate(value):
            _check(schema["items"], item, f"{path}[{index}]", errors)


def _check_number(schema: Schema, value: float, path: str, errors: list[str]) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        errors.append(f"{_where(path)}: {value} is not a finite number")
        return
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{_where(path)}: {value} is less than the minimum {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{_where(path)}: {value} is greater than the maximum {schema['maximum']}")


def _check_object(schema: Schema, value: dict[Any, Any], path: str, errors: list[str]) -> None:
    properties: dict[str, Schema] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            errors.append(f"{_join(path, name)}: required property is missing")
    additional = schema.get("additionalProperties", True)
    if additional is not True and additional is not False:
        raise ValueError(f"schema at {_where(path)}: additionalProperties must be a boolean")
    for key, item in value.items():
        child = _join(path, str(key))
        if key in properties:
            _check(properties[key], item, child, errors)
        elif additional is False:
            allowed = ", ".join(properties) or "none"
            errors.append(f"{child}: unknown property (allowed: {allowed})")
