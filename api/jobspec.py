"""Checks on a new job that need the store or settings (the schema did the rest):
base experiment and action, specs against the action's schema, timeout, the
workspace and parent job it names, and which backend runs it."""

from __future__ import annotations

from typing import Any

from jobyard.api.errors import BadRequest
from jobyard.api.services import Services
from jobyard.backends import registry
from jobyard.schemas import staging
from jobyard.schemas.catalog import NoWorkload
from jobyard.schemas.job import DERIVED_ACTIONS, JobState
from jobyard.store.errors import NotFound
from jobyard.store.fingerprint import fingerprint, forced

PARENT_ACTIONS = frozenset({"train", "retrain"})


def validated_job(svc: Services, org: str, body: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """The job fields to store, the backend that runs it and the job's
    fingerprint (for duplicate prevention), or a 400 saying why not."""
    fields = dict(body)
    force = fields.pop("force_create", False)
    try:
        experiment = svc.store.catalog.for_job(fields)
    except NoWorkload as e:
        raise BadRequest(str(e), {"network_arch": [str(e)]}) from e
    action = fields["action"]
    if action not in experiment.actions:
        message = (
            f"action {action} is not supported by {experiment.name}; "
            f"supported: {', '.join(experiment.actions)}"
        )
        raise BadRequest(message, {"action": [message]})
    fields.setdefault("network_arch", experiment.network_arch)
    fields["base_experiment_ids"] = fields.get("base_experiment_ids") or [experiment.id]
    if fields.get("specs") is None:
        fields["specs"] = experiment.default_spec(action)
    problems = experiment.validate(action, fields["specs"])
    if problems:
        raise BadRequest(
            f"invalid specs for {action}: " + "; ".join(problems[:5]), {"specs": problems}
        )
    fields["timeout_minutes"] = _timeout(svc, fields.get("timeout_minutes"))
    if fields.get("workspace"):
        try:
            svc.store.workspaces.get(org, fields["workspace"])
        except NotFound as e:
            raise BadRequest(str(e), {"workspace": [str(e)]}) from e
    _check_parent(svc, org, fields)
    _check_datasets(svc, org, fields)
    backend = _backend(svc, org, fields)
    identity = forced() if force else fingerprint("job", fields, svc.store.cipher.key_text)
    if "encryption_key" in fields:
        fields["encryption_key"] = svc.store.cipher.encrypt({"key": fields["encryption_key"]})
    return fields, backend, identity


def _timeout(svc: Services, requested: int | None) -> int:
    settings = svc.settings
    value = requested or settings.default_timeout_minutes
    if value > settings.max_timeout_minutes:
        message = f"must be at most {settings.max_timeout_minutes} on this deployment"
        raise BadRequest(f"timeout_minutes {message}", {"timeout_minutes": [message]})
    return value


def _check_datasets(svc: Services, org: str, fields: dict[str, Any]) -> None:
    """Dataset ids must name datasets of this org; staging resolves them at dispatch."""
    for source in staging.sources(fields):
        if source.kind == "dataset":
            try:
                svc.store.datasets.get(org, source.value)
            except NotFound as e:
                raise BadRequest(str(e), {source.field: [str(e)]}) from e


def _check_parent(svc: Services, org: str, fields: dict[str, Any]) -> None:
    parent_id = fields.get("parent_job_id")
    action = fields["action"]
    if not parent_id:
        if action in DERIVED_ACTIONS:
            message = f"{action} reads a trained model: give parent_job_id (a train job)"
            raise BadRequest(message, {"parent_job_id": [message]})
        return
    try:
        parent = svc.store.jobs.get(org, parent_id)
    except NotFound as e:
        raise BadRequest(str(e), {"parent_job_id": [str(e)]}) from e
    if action in DERIVED_ACTIONS:
        if parent["action"] not in PARENT_ACTIONS:
            message = f"parent job {parent_id} is a {parent['action']} job, not a train job"
            raise BadRequest(message, {"parent_job_id": [message]})
        if parent["status"] != JobState.DONE.value:
            message = (
                f"parent job {parent_id} is {parent['status']}; create this job once it is Done"
            )
            raise BadRequest(message, {"parent_job_id": [message]})


def _backend(svc: Services, org: str, fields: dict[str, Any]) -> str:
    """The backend target: ``local`` is the deployment's own backend; ``slurm`` and
    ``lepton`` run where the job's workspace points (``kind:workspace_id``)."""
    details = fields.get("backend_details") or {}
    kind = details.get("backend_type", "local")
    name = svc.settings.local_backend if kind == "local" else kind
    if name not in registry.available():
        offered = ", ".join(["local", *(k for k in registry.available() if k != name)])
        message = f"backend {kind} is not available on this deployment (available: {offered})"
        raise BadRequest(message, {"backend_details": [message]})
    target = name
    if name in registry.WORKSPACE_KINDS:
        target = registry.target(name, _workspace_for(svc, org, fields, name))
    parent_backend = None
    if fields.get("parent_job_id"):
        parent_backend = svc.store.jobs.find(fields["parent_job_id"]) or {}
        parent_backend = parent_backend.get("backend")
    if parent_backend and parent_backend != target:
        message = f"the parent job ran on {parent_backend}; run this job there too"
        raise BadRequest(message, {"backend_details": [message]})
    return target


def _workspace_for(svc: Services, org: str, fields: dict[str, Any], kind: str) -> str:
    """The job's workspace, which must be of the backend's cloud type: it holds the
    cluster's address and credentials."""
    workspace_id = fields.get("workspace")
    if not workspace_id:
        message = f"backend_type {kind} runs where a {kind} workspace points: give workspace"
        raise BadRequest(message, {"workspace": [message]})
    workspace = svc.store.workspaces.get(org, workspace_id)
    if workspace.cloud_type != kind:
        message = (
            f"workspace {workspace_id} is a {workspace.cloud_type} workspace; "
            f"backend_type {kind} needs a {kind} workspace"
        )
        raise BadRequest(message, {"workspace": [message]})
    return str(workspace_id)


def resume_changes(svc: Services, job: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """What a resume may change: specs (validated again) and the timeout."""
    changes: dict[str, Any] = {}
    if body.get("specs"):
        experiment = svc.store.catalog.for_job(job)
        problems = experiment.validate(job["action"], body["specs"])
        if problems:
            raise BadRequest(
                f"invalid specs for {job['action']}: " + "; ".join(problems[:5]),
                {"specs": problems},
            )
        changes["specs"] = body["specs"]
    if body.get("timeout_minutes"):
        changes["timeout_minutes"] = _timeout(svc, body["timeout_minutes"])
    return changes
