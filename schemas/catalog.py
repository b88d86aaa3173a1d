"""Base experiments as data: what a job can start from and what it runs.

A catalog entry is plain data (README.md, "The workload catalog"): a network, its actions,
per action the command template, the default spec and its JSON Schema, which actions may
be a parent of which, the status protocol, the image per container backend, the metric,
default resources and tunable hyperparameters. Nothing here knows a workload by name: the
reference workload publishes its entries as data too (``workloads.catalog``).

``entry_problems`` checks an entry before it is stored, with messages that name the field
by its dotted path (``actions.train.command[3]: unknown placeholder {foo}``); specs are
validated with the ``jsonschema`` library, again naming each field (``train.num_epochs:``).
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import marshmallow as ma
from jsonschema.exceptions import SchemaError, ValidationError
from marshmallow import fields, validate

from jobyard.schemas import templates
from jobyard.schemas.common import StrictSchema
from jobyard.schemas.job import ACTIONS, SERVE_ACTION
from jobyard.schemas.protocols import PARSERS

_NAMESPACE = uuid.UUID("6f1c1d0e-4a53-4bd4-9a3e-6a6f62796172")
MAX_PROBLEMS = 20
GLOBAL = "global"  # the scope of entries every org sees
KINDS = ("experiment", "dataset")
PROTOCOLS = tuple(PARSERS)  # jobyard, tao
SPEC_FORMATS = ("json", "yaml")
SPEC_FILES = {"json": "specs.json", "yaml": "specs.yaml"}
TAO_STATUS_FILE = "{results_dir}/status.json"  # where TAO's status logger writes
CONTAINER_BACKENDS = ("kubernetes", "lepton")
PARAM_TYPES = ("float", "int", "categorical", "bool")
GOALS = ("maximize", "minimize")  # which way the metric is better
NETWORK_ARCH = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_SPEC_KEY = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


class NoWorkload(Exception):
    """No base experiment can run this job."""


def experiment_id(key: str, scope: str = GLOBAL) -> str:
    """A stable id: the same entry has the same id on every deployment and restart (a
    global entry's from its ngc_path, so ids published before the catalog moved into
    MongoDB still name the same entry)."""
    return str(uuid.uuid5(_NAMESPACE, key if scope == GLOBAL else f"{scope}/{key}"))


# --- validation: marshmallow for the shape, then the cross-field rules -------------------


def _template(value: str) -> None:
    try:
        templates.names(value)
    except templates.TemplateError as e:
        raise ma.ValidationError(str(e)) from e


_COMMAND = fields.List(
    fields.String(validate=[validate.Length(1, 4096), _template]), validate=validate.Length(1, 200)
)


class HyperparameterSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Regexp(_SPEC_KEY))
    type = fields.String(required=True, validate=validate.OneOf(PARAM_TYPES))
    min = fields.Float(allow_nan=False)
    max = fields.Float(allow_nan=False)
    log = fields.Boolean(load_default=False)
    options = fields.List(fields.Raw(), validate=validate.Length(1, 1000))
    default = fields.Raw()
    searched = fields.Boolean(load_default=False)
    description = fields.String(validate=validate.Length(max=1000))

    @ma.validates_schema
    def _ranges(self, data: dict[str, Any], **_: Any) -> None:
        kind = data["type"]
        if kind in ("float", "int"):
            if "min" not in data or "max" not in data:
                raise ma.ValidationError(f"a {kind} hyperparameter needs min and max", "min")
            if data["min"] > data["max"]:
                raise ma.ValidationError("must not be above max", "min")
            if data["log"] and data["min"] <= 0:
                raise ma.ValidationError("a log-scale range must be above 0", "min")
        if kind == "categorical" and not data.get("options"):
            raise ma.ValidationError("a categorical hyperparameter needs options", "options")


class ActionSchema(StrictSchema):
    command = _COMMAND
    default_spec = fields.Dict(keys=fields.String(), load_default=dict)
    json_schema = fields.Dict(keys=fields.String(), load_default=None, allow_none=True)
    spec_fields = fields.Dict(
        keys=fields.String(validate=validate.Regexp(_SPEC_KEY)),
        values=fields.String(validate=[validate.Length(1, 4096), _template]),
        load_default=dict,
    )
    parents = fields.List(fields.String(), load_default=list, validate=validate.Length(max=50))
    produces_data = fields.Boolean(load_default=False)
    output_dir = fields.String(load_default=".", validate=validate.Length(1, 1024))
    description = fields.String(validate=validate.Length(max=1000))
    # serve: what answers 200 once the model is loaded, and where requests go
    health_path = fields.String(load_default="/health", validate=validate.Regexp(r"/[^\s?#]*"))
    inference_path = fields.String(load_default="/v1/infer", validate=validate.Regexp(r"/[^\s?#]*"))


class EntrySchema(StrictSchema):
    network_arch = fields.String(required=True, validate=validate.Regexp(NETWORK_ARCH))
    name = fields.String(required=True, validate=validate.Regexp(NAME))
    ngc_path = fields.String(validate=validate.Length(1, 250))
    description = fields.String(load_default="", validate=validate.Length(max=2000))
    kind = fields.String(load_default="experiment", validate=validate.OneOf(KINDS))
    dataset_types = fields.List(fields.String(validate=validate.Length(1, 100)), load_default=list)
    dataset_formats = fields.List(
        fields.String(validate=validate.Length(1, 100)), load_default=list
    )
    status_protocol = fields.String(load_default="jobyard", validate=validate.OneOf(PROTOCOLS))
    spec_format = fields.String(validate=validate.OneOf(SPEC_FORMATS))
    status_file = fields.String(validate=[validate.Length(1, 4096), _template])
    image = fields.String(load_default="", validate=validate.Length(max=1024))
    images = fields.Dict(
        keys=fields.String(validate=validate.OneOf(CONTAINER_BACKENDS)),
        values=fields.String(validate=validate.Length(1, 1024)),
        load_default=dict,
    )
    command = _COMMAND
    metric = fields.String(validate=validate.Length(1, 200))
    metric_goal = fields.String(load_default="maximize", validate=validate.OneOf(GOALS))
    metrics = fields.List(fields.String(validate=validate.Length(1, 200)), load_default=list)
    resources = fields.Dict(keys=fields.String(), load_default=dict)
    encryption_key_field = fields.String(validate=validate.Regexp(_SPEC_KEY))
    actions = fields.Dict(keys=fields.String(), required=True)
    hyperparameters = fields.List(fields.Dict(), load_default=list)


def _dotted(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _flatten(errors: Any, where: list[Any]) -> list[str]:
    """marshmallow's nested error dict as ``dotted.path: message`` lines."""
    if isinstance(errors, Mapping):
        out = []
        for key, value in errors.items():
            part: Any = key
            if key == "_schema":
                out += _flatten(value, where)
                continue
            if isinstance(key, str) and key.isdigit():
                part = int(key)
            out += _flatten(value, [*where, part])
        return out
    if isinstance(errors, list) and all(isinstance(e, str) for e in errors):
        return [f"{_dotted(where) or 'entry'}: {message}" for message in errors]
    if isinstance(errors, list):
        return [line for e in errors for line in _flatten(e, where)]
    return [f"{_dotted(where) or 'entry'}: {errors}"]


def entry_problems(data: Any) -> tuple[dict[str, Any], list[str]]:
    """(the entry as loaded, with defaults filled in; every problem with it), each problem
    naming its field. An entry with problems must not be stored."""
    if not isinstance(data, Mapping):
        return {}, ["entry: must be an object"]
    try:
        entry: dict[str, Any] = EntrySchema().load(dict(data))
    except ma.ValidationError as e:
        return {}, _flatten(e.messages, [])
    problems: list[str] = []
    actions: dict[str, Any] = {}
    if not entry["actions"]:
        problems.append("actions: give at least one action")
    for action, raw in entry["actions"].items():
        where = f"actions.{action}"
        if action not in ACTIONS and action != SERVE_ACTION:
            problems.append(
                f"{where}: unknown action (jobs can ask for: {', '.join(ACTIONS)}; "
                f"{SERVE_ACTION}: the model server of inference microservices)"
            )
            continue
        if not isinstance(raw, Mapping) and raw is not None:
            problems.append(f"{where}: must be an object")
            continue
        try:
            actions[action] = ActionSchema().load(dict(raw or {}))
        except ma.ValidationError as e:
            problems += _flatten(e.messages, ["actions", action])
    entry["actions"] = actions
    problems += _action_problems(entry)
    problems += _template_problems(entry)
    for index, raw in enumerate(entry["hyperparameters"]):
        try:
            entry["hyperparameters"][index] = HyperparameterSchema().load(raw)
        except ma.ValidationError as e:
            problems += _flatten(e.messages, ["hyperparameters", index])
    if entry.get("metric") and entry["metrics"] and entry["metric"] not in entry["metrics"]:
        problems.append(f"metric: {entry['metric']} is not among metrics")
    return entry, problems[:MAX_PROBLEMS]


def _action_problems(entry: Mapping[str, Any]) -> list[str]:
    problems = []
    known = entry["actions"]
    for action, spec in known.items():
        where = f"actions.{action}"
        for parent in spec["parents"]:
            if parent not in known:
                problems.append(
                    f"{where}.parents: unknown action {parent} "
                    f"(this entry has: {', '.join(sorted(known))})"
                )
        if not (spec.get("command") or entry.get("command")):
            problems.append(f"{where}.command: no command (give one here or for the entry)")
        schema = spec.get("json_schema")
        if schema is not None:
            try:
                jsonschema.Draft202012Validator.check_schema(schema)
            except SchemaError as e:
                path = _dotted(e.absolute_path)
                problems.append(
                    f"{where}.json_schema: not a valid JSON Schema"
                    + (f" at {path}" if path else "")
                    + f": {e.message}"
                )
                continue
            for line in problems_of(jsonschema.Draft202012Validator(schema), spec["default_spec"]):
                problems.append(f"{where}.default_spec: {line}")
        if spec["produces_data"] and entry["kind"] != "dataset":
            problems.append(f"{where}.produces_data: only dataset entries produce datasets")
    return problems


def _template_problems(entry: Mapping[str, Any]) -> list[str]:
    problems = []
    located: list[tuple[str, str]] = []
    for index, part in enumerate(entry.get("command") or []):
        located.append((f"command[{index}]", part))
    if entry.get("status_file"):
        located.append(("status_file", entry["status_file"]))
    for action, spec in entry["actions"].items():
        for index, part in enumerate(spec.get("command") or []):
            located.append((f"actions.{action}.command[{index}]", part))
        for key, value in spec["spec_fields"].items():
            located.append((f"actions.{action}.spec_fields.{key}", value))
    known = ", ".join(templates.PLACEHOLDERS)
    for where, text in located:
        for name in templates.unknown([text]):
            problems.append(f"{where}: unknown placeholder {{{name}}} (known: {known})")
    if entry.get("status_file") and entry["status_protocol"] != "tao":
        problems.append("status_file: only the tao protocol reads a status file of its own")
    return problems


# --- the entry as the API and the engine use it ------------------------------------------


@dataclass(frozen=True)
class Action:
    name: str
    command: tuple[str, ...]
    default_spec: Mapping[str, Any]
    json_schema: Mapping[str, Any] | None
    spec_fields: Mapping[str, str]
    parents: tuple[str, ...]
    produces_data: bool = False
    output_dir: str = "."
    health_path: str = "/health"
    inference_path: str = "/v1/infer"


@dataclass(frozen=True)
class BaseExperiment:
    """One catalog entry, loaded (``from_data``) from data ``entry_problems`` accepted."""

    id: str
    scope: str
    network_arch: str
    name: str
    ngc_path: str
    description: str
    kind: str
    actions_by_name: Mapping[str, Action]
    status_protocol: str = "jobyard"
    spec_format: str = "json"
    status_file: str | None = None
    image: str = ""
    images: Mapping[str, str] = field(default_factory=dict)
    metric: str | None = None
    metric_goal: str = "maximize"
    metrics: tuple[str, ...] = ()
    resources: Mapping[str, Any] = field(default_factory=dict)
    encryption_key_field: str | None = None
    dataset_types: tuple[str, ...] = ()
    dataset_formats: tuple[str, ...] = ()
    hyperparameters: tuple[Mapping[str, Any], ...] = ()
    # a published model's weights: {"workspace", "location", "checkpoint"} (schemas.models)
    pretrained: Mapping[str, Any] | None = None
    data: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # compiled once per action: every job create validates its specs
    _validators: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(self.actions_by_name)

    def action(self, name: str) -> Action:
        return self.actions_by_name[name]

    def default_spec(self, action: str) -> dict[str, Any]:
        """A fresh copy, safe to edit."""
        return copy.deepcopy(dict(self.actions_by_name[action].default_spec))

    def json_schema(self, action: str) -> dict[str, Any]:
        return copy.deepcopy(dict(self.actions_by_name[action].json_schema or {"type": "object"}))

    def validate(self, action: str, spec: Any) -> list[str]:
        """Problems with ``spec`` for ``action``; [] when it is valid."""
        validator = self._validators.get(action)
        if validator is None:
            validator = self._validators[action] = jsonschema.Draft202012Validator(
                self.json_schema(action)
            )
        return problems_of(validator, spec)

    def needs_checkpoint(self, action: str) -> bool:
        """The action's command or spec fields name ``{parent_checkpoint}``."""
        spec = self.actions_by_name[action]
        used = [*spec.command, *spec.spec_fields.values()]
        return any("parent_checkpoint" in templates.names(t) for t in used)

    def status_template(self) -> str | None:
        """Where the workload writes its own status file (tao), as a template."""
        if self.status_protocol != "tao":
            return None
        return self.status_file or TAO_STATUS_FILE

    def image_for(self, backend: str) -> str:
        return self.images.get(backend) or self.image

    def to_doc(self) -> dict[str, Any]:
        """The wire view of ``jobs:list_base_experiments``."""
        return {
            "id": self.id,
            "name": self.name,
            "network_arch": self.network_arch,
            "ngc_path": self.ngc_path,
            "description": self.description,
            "kind": self.kind,
            "actions": list(self.actions),
            "is_base_experiment": True,
            "scope": self.scope,
            "read_only": self.scope == GLOBAL,
            "status_protocol": self.status_protocol,
            "image": self.image,
            "metric": self.metric,
            "dataset_types": list(self.dataset_types),
            "dataset_formats": list(self.dataset_formats),
            "published_model": self.pretrained is not None,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any], scope: str = GLOBAL) -> BaseExperiment:
        """From an entry as ``entry_problems`` returned it (defaults filled in)."""
        default_command = tuple(data.get("command") or ())
        actions = {
            name: Action(
                name=name,
                command=tuple(spec.get("command") or default_command),
                default_spec=dict(spec.get("default_spec") or {}),
                json_schema=spec.get("json_schema"),
                spec_fields=dict(spec.get("spec_fields") or {}),
                parents=tuple(spec.get("parents") or ()),
                produces_data=bool(spec.get("produces_data")),
                output_dir=str(spec.get("output_dir") or "."),
                health_path=str(spec.get("health_path") or "/health"),
                inference_path=str(spec.get("inference_path") or "/v1/infer"),
            )
            for name, spec in data["actions"].items()
        }
        protocol = str(data.get("status_protocol") or "jobyard")
        ngc_path = str(data.get("ngc_path") or f"{data['network_arch']}:{data['name']}")
        return cls(
            id=experiment_id(ngc_path, scope),
            scope=scope,
            network_arch=str(data["network_arch"]),
            name=str(data["name"]),
            ngc_path=ngc_path,
            description=str(data.get("description") or ""),
            kind=str(data.get("kind") or "experiment"),
            actions_by_name=actions,
            status_protocol=protocol,
            spec_format=str(data.get("spec_format") or ("yaml" if protocol == "tao" else "json")),
            status_file=data.get("status_file"),
            image=str(data.get("image") or ""),
            images=dict(data.get("images") or {}),
            metric=data.get("metric"),
            metric_goal=str(data.get("metric_goal") or "maximize"),
            metrics=tuple(data.get("metrics") or ()),
            resources=dict(data.get("resources") or {}),
            encryption_key_field=data.get("encryption_key_field"),
            dataset_types=tuple(data.get("dataset_types") or ()),
            dataset_formats=tuple(data.get("dataset_formats") or ()),
            hyperparameters=tuple(data.get("hyperparameters") or ()),
            data=copy.deepcopy(dict(data)),
        )


def load_entry(data: Any, scope: str = GLOBAL) -> BaseExperiment:
    """An entry from data, or ``InvalidEntry`` listing every problem."""
    entry, problems = entry_problems(data)
    if problems:
        raise InvalidEntry(problems)
    return BaseExperiment.from_data(entry, scope)


def entries_in(document: Any) -> list[Any]:
    """The entries of an import file: one entry, a list of them, or a list under
    ``base_experiments:`` (what ``jobyard admin workloads export`` writes)."""
    if isinstance(document, Mapping) and "base_experiments" in document:
        document = document["base_experiments"]
    if isinstance(document, Mapping):
        return [document]
    if isinstance(document, list):
        return list(document)
    raise InvalidEntry(["file: holds no entry (an object, a list, or base_experiments: [...])"])


def load_entries(document: Any, scope: str = GLOBAL) -> list[BaseExperiment]:
    """Every entry of an import file, or ``InvalidEntry`` listing the problems of all of
    them (each prefixed by the entry's position and name): nothing is imported from a file
    with a bad entry."""
    loaded, problems = [], []
    for index, data in enumerate(entries_in(document)):
        entry, found = entry_problems(data)
        name = data.get("name") if isinstance(data, Mapping) else None
        where = f"base_experiments[{index}]" + (f" ({name})" if name else "")
        problems += [f"{where}.{line}" for line in found]
        if not found:
            loaded.append(BaseExperiment.from_data(entry, scope))
    if problems:
        raise InvalidEntry(problems)
    return loaded


class InvalidEntry(ValueError):
    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("invalid catalog entry: " + "; ".join(problems[:5]))
        self.problems = list(problems)


# --- specs -------------------------------------------------------------------------------


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


def set_dotted(spec: dict[str, Any], key: str, value: Any) -> None:
    """``spec["a"]["b"] = value`` for ``key`` "a.b", making the objects on the way; a number
    indexes a list the spec already has (``dataset.train_data_sources.0.image_dir``)."""
    node: Any = spec
    *parents, last = key.split(".")
    for part in parents:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            continue
        child = node.get(part) if isinstance(node, dict) else None
        if not isinstance(child, dict | list):
            child = node[part] = {}
        node = child
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = value
    else:
        node[last] = value


def pick(entries: Sequence[BaseExperiment], job: Mapping[str, Any]) -> BaseExperiment:
    """The entry a job runs when it names none by id: the first of its network_arch (a
    kind:dataset job without one: the first dataset entry reading its dataset's type and
    format). ``entries`` come in preference order (the org's own before global ones)."""
    kind = job.get("kind") or "experiment"
    arch = job.get("network_arch") or ""
    of_kind = [e for e in entries if e.kind == kind]
    if arch:
        found = next((e for e in of_kind if e.network_arch == arch), None)
    else:
        found = next((e for e in of_kind if _reads(e, job)), None)
    if found is not None:
        return found
    arches = ", ".join(sorted({e.network_arch for e in of_kind})) or "none"
    if arch:
        what = "base experiment" if kind == "experiment" else f"{kind} base experiment"
        raise NoWorkload(
            f"no {what} runs network_arch {arch!r} "
            f"(available: {arches}; see jobs:list_base_experiments)"
        )
    wanted = job.get("dataset_type"), job.get("dataset_format")
    shown = "/".join(w for w in wanted if w) or "no type or format given"
    raise NoWorkload(
        f"no dataset base experiment reads this dataset ({shown}); give network_arch "
        f"(dataset entries: {arches}) or dataset_type/dataset_format"
    )


def _reads(entry: BaseExperiment, job: Mapping[str, Any]) -> bool:
    dtype, dformat = job.get("dataset_type"), job.get("dataset_format")
    if dtype and entry.dataset_types and dtype not in entry.dataset_types:
        return False
    if dformat and entry.dataset_formats and dformat not in entry.dataset_formats:
        return False
    return True
