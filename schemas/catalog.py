"""Base experiments as data: what a job can start from and what it runs.

An entry is plain data (a network, its actions, the command, the image, and per action
the default spec and its JSON Schema), so the catalog can be stored, listed and edited
like any other document; nothing here knows a workload by name. Specs are validated
with the ``jsonschema`` library, with messages that name the offending field by its
dotted path (``train.num_epochs: ...``) as seed 001's error bodies do.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

_NAMESPACE = uuid.UUID("6f1c1d0e-4a53-4bd4-9a3e-6a6f62796172")
MAX_PROBLEMS = 20


class NoWorkload(Exception):
    """No base experiment can run this job."""


def experiment_id(ngc_path: str) -> str:
    """A stable id: the same entry has the same id on every deployment and restart."""
    return str(uuid.uuid5(_NAMESPACE, ngc_path))


@dataclass(frozen=True)
class BaseExperiment:
    name: str
    network_arch: str
    ngc_path: str
    description: str
    actions: tuple[str, ...]
    command: tuple[str, ...]  # run by every backend; "python" is the backend's interpreter
    image: str  # for container backends (Kubernetes, Lepton)
    default_specs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    json_schemas: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    id: str = field(init=False)
    # compiled once per action: every job create validates its specs
    _validators: dict[str, Any] = field(init=False, default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", experiment_id(self.ngc_path))

    def default_spec(self, action: str) -> dict[str, Any]:
        """A fresh copy, safe to edit."""
        return copy.deepcopy(dict(self.default_specs.get(action) or {}))

    def json_schema(self, action: str) -> dict[str, Any]:
        return copy.deepcopy(dict(self.json_schemas.get(action) or {"type": "object"}))

    def validate(self, action: str, spec: Any) -> list[str]:
        """Problems with ``spec`` for ``action``; [] when it is valid."""
        validator = self._validators.get(action)
        if validator is None:
            schema = self.json_schemas.get(action) or {"type": "object"}
            validator = self._validators[action] = jsonschema.Draft202012Validator(schema)
        return problems_of(validator, spec)

    def to_doc(self) -> dict[str, Any]:
        """The wire view of ``jobs:list_base_experiments``."""
        return {
            "id": self.id,
            "name": self.name,
            "network_arch": self.network_arch,
            "ngc_path": self.ngc_path,
            "description": self.description,
            "actions": list(self.actions),
            "is_base_experiment": True,
            "image": self.image,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> BaseExperiment:
        return cls(
            name=str(data["name"]),
            network_arch=str(data["network_arch"]),
            ngc_path=str(data["ngc_path"]),
            description=str(data.get("description", "")),
            actions=tuple(data["actions"]),
            command=tuple(data["command"]),
            image=str(data.get("image", "")),
            default_specs=dict(data.get("default_specs") or {}),
            json_schemas=dict(data.get("json_schemas") or {}),
        )


def spec_problems(schema: Mapping[str, Any], spec: Any) -> list[str]:
    """Every problem at once (up to MAX_PROBLEMS), each prefixed by the dotted path."""
    return problems_of(jsonschema.Draft202012Validator(schema), spec)


def problems_of(validator: Any, spec: Any) -> list[str]:
    found: list[str] = []
    for error in sorted(validator.iter_errors(spec), key=lambda e: list(map(str, e.path))):
        found.extend(_messages(error))
        if len(found) >= MAX_PROBLEMS:
            break
    return found[:MAX_PROBLEMS]


def _dotted(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _messages(error: ValidationError) -> list[str]:
    """One line per problem; an unknown or missing property is named by its own path."""
    where = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = error.schema.get("properties", {}) if isinstance(error.schema, Mapping) else {}
        allowed = ", ".join(known) or "none"
        extra = [k for k in error.instance if k not in known]
        return [f"{_dotted([*where, k])}: unknown property (allowed: {allowed})" for k in extra]
    if error.validator == "required" and isinstance(error.validator_value, list):
        present = error.instance if isinstance(error.instance, Mapping) else {}
        missing = [k for k in error.validator_value if k not in present]
        return [f"{_dotted([*where, k])}: required property is missing" for k in missing]
    return [f"{_dotted(where) or 'specs'}: {error.message}"]


def find(experiments: Iterable[BaseExperiment], job: Mapping[str, Any]) -> BaseExperiment:
    """The base experiment a job names, or the first one for its network_arch."""
    entries = list(experiments)
    by_id = {e.id: e for e in entries}
    for base_id in job.get("base_experiment_ids") or []:
        if base_id in by_id:
            return by_id[base_id]
    arch = job.get("network_arch") or ""
    found = next((e for e in entries if e.network_arch == arch), None)
    if found is None:
        arches = ", ".join(sorted({e.network_arch for e in entries}))
        raise NoWorkload(
            f"no base experiment runs network_arch {arch!r} "
            f"(available: {arches}; see jobs:list_base_experiments)"
        )
    return found
