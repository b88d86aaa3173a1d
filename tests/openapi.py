"""Walking the served OpenAPI document, so that contract tests cover every operation it
lists, and every input of each, without a list of their own to forget to update."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jobyard.api.auth import ADMIN_EXTENSION

METHODS = ("get", "put", "post", "delete", "patch")

# Steps from a request body down to one of its values: ("prop", name) for an object's
# property, ("item",) for an array's element, ("value",) for a free-keyed object's value.
Step = tuple[str, ...]


def spec(client: Any) -> dict[str, Any]:
    response = client.get("/api/v2/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json
    return document


@dataclass(frozen=True)
class Operation:
    method: str  # upper case, as the test client takes it
    path: str  # as documented: /api/v2/orgs/{org_name}/jobs/{job_id}:logs
    doc: Mapping[str, Any]
    path_params: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def admin_only(self) -> bool:
        return bool(self.doc.get(ADMIN_EXTENSION))

    @property
    def public(self) -> bool:
        """Documented as needing no token (``security: []``)."""
        return self.doc.get("security") == []

    def query(self) -> list[Mapping[str, Any]]:
        return [p for p in self.doc.get("parameters", []) if p["in"] == "query"]

    def body_schema(self) -> Mapping[str, Any] | None:
        content = self.doc.get("requestBody", {}).get("content", {})
        found: Mapping[str, Any] | None = content.get("application/json", {}).get("schema")
        return found

    def url(self, values: Mapping[str, str]) -> str:
        """The path with its parameters filled in; one not in ``values`` gets a random id."""
        filled = {p: values.get(p, uuid.uuid4().hex) for p in self.path_params}
        return self.path.format_map(filled)


def operations(document: Mapping[str, Any]) -> list[Operation]:
    found = []
    for path, item in document["paths"].items():
        shared = [p["name"] for p in item.get("parameters", []) if p["in"] == "path"]
        for method in METHODS:
            if method in item:
                own = [p["name"] for p in item[method].get("parameters", []) if p["in"] == "path"]
                params = tuple(dict.fromkeys([*shared, *own]))
                found.append(Operation(method.upper(), path, item[method], params))
    assert found, "the document lists no operations"
    return found


def resolve(document: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        *_, name = schema["$ref"].split("/")
        schema = document["components"]["schemas"][name]
    return schema


def _types(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type")
    return set(kind) if isinstance(kind, list) else {kind} if kind else set()


def values_of_type(
    document: Mapping[str, Any],
    schema: Mapping[str, Any],
    kind: str,
    steps: tuple[Step, ...] = (),
    seen: frozenset[str] = frozenset(),
) -> Iterator[tuple[Step, ...]]:
    """Steps to every value of JSON type ``kind`` in a body schema: through ``$ref``s,
    ``allOf``/``anyOf``/``oneOf``, nested objects, arrays and free-keyed objects."""
    ref = schema.get("$ref")
    if ref is not None:
        if ref in seen:
            return  # a recursive schema: its values were found one level up
        seen = seen | {ref}
    schema = resolve(document, schema)
    if kind in _types(schema):
        yield steps
    for combined in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(combined, []):
            yield from values_of_type(document, sub, kind, steps, seen)
    for name, prop in schema.get("properties", {}).items():
        yield from values_of_type(document, prop, kind, (*steps, ("prop", name)), seen)
    if isinstance(schema.get("items"), Mapping):
        yield from values_of_type(document, schema["items"], kind, (*steps, ("item",)), seen)
    if isinstance(schema.get("additionalProperties"), Mapping):
        extra = schema["additionalProperties"]
        yield from values_of_type(document, extra, kind, (*steps, ("value",)), seen)


def body_with(steps: tuple[Step, ...], value: Any) -> Any:
    """The smallest body that puts ``value`` where ``steps`` lead."""
    if not steps:
        return value
    step, rest = steps[0], steps[1:]
    if step[0] == "prop":
        return {step[1]: body_with(rest, value)}
    if step[0] == "item":
        return [body_with(rest, value)]
    return {"k": body_with(rest, value)}


def error_keys(steps: tuple[Step, ...]) -> list[str]:
    """Where marshmallow reports an error for the value ``body_with`` placed (as JSON keys)."""
    keys: list[str] = []
    for step in steps:
        if step[0] == "prop":
            keys.append(step[1])
        elif step[0] == "item":
            keys.append("0")
        else:
            keys += ["k", "value"]
    return keys


def names_field(errors: Any, keys: list[str]) -> bool:
    """``errors`` (a 400's per-field messages) holds a message under ``keys``."""
    for key in keys:
        if not isinstance(errors, Mapping) or key not in errors:
            return False
        errors = errors[key]
    return bool(errors)


def create_resources(session: Any, name: str = "w") -> dict[str, str]:
    """A workspace, a dataset, a (Pending) job and a template of the session's org, all called
    ``name``: path values that let every operation get past its lookups. No worker runs,
    so nothing but the API changes them."""
    workspace = session.call("POST", "workspaces", json={"name": name, "cloud_type": "local"})
    assert workspace.status_code == 201, workspace.json
    url = "https://example.com/d.tgz"
    dataset = session.call(
        "POST",
        "datasets",
        json={"name": name, "type": "object_detection", "format": "coco", "url": url},
    )
    assert dataset.status_code == 201, dataset.json
    job = session.call(
        "POST",
        "jobs",
        json={
            "name": name,
            "kind": "experiment",
            "action": "train",
            "network_arch": "classification_pyt",
        },
    )
    assert job.status_code == 201, job.json
    template = session.call(
        "POST",
        "workload-templates/trainings",
        json={"meta": {"name": name}, "spec": {"kind": "experiment", "action": "train"}},
    )
    assert template.status_code == 202, template.json
    return {
        "org_name": session.org,
        "workspace_id": workspace.json["id"],
        "dataset_id": dataset.json["id"],
        "job_id": job.json["id"],
        "template_id": template.json["meta"]["id"],
        "kind": "trainings",
    }
