"""Checks on a new job that need the store or settings (the schema did the rest): the
catalog entry and action, specs against the action's schema, timeout, the workspace,
datasets and parent job it names (the entry's parent rules, the checkpoint it starts
from), which backend runs it, and its secrets, encrypted before they are stored."""

from __future__ import annotations

from typing import Any

from jobyard.api import checkpoints
from jobyard.api.errors import BadRequest
from jobyard.api.services import Services
from jobyard.backends import registry
from jobyard.schemas import automl, staging
from jobyard.schemas.catalog import BaseExperiment, NoWorkload
from jobyard.schemas.cloud import MASK
from jobyard.schemas.job import PRIORITIES, JobState
from jobyard.store.errors import NotFound
from jobyard.store.fingerprint import fingerprint, forced


def _bad(field: str, message: str) -> BadRequest:
    return BadRequest(message, {field: [message]})


def validated_job(svc: Services, org: str, body: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """The job fields to store, the backend that runs it and the job's
    fingerprint (for duplicate prevention), or a 400 saying why not."""
    fields = dict(body)
    force = fields.pop("force_create", False)
    _top_level_backend_fields(fields)
    _check_datasets(svc, org, fields)
    experiment = _experiment(svc, org, fields)
    action = fields["action"]
    fields.setdefault("network_arch", experiment.network_arch)
    fields["base_experiment_ids"] = fields.get("base_experiment_ids") or [experiment.id]
    fields["catalog_id"] = experiment.id
    fields["status_protocol"] = experiment.status_protocol
    if experiment.action(action).produces_data:
        fields["dataset_output"] = experiment.action(action).output_dir
    if fields.get("specs") is None:
        fields["specs"] = experiment.default_spec(action)
    problems = experiment.validate(action, fields["specs"])
    if problems:
        raise BadRequest(
            f"invalid specs for {action}: " + "; ".join(problems[:5]), {"specs": problems}
        )
    _check_automl(fields, experiment)
    fields["timeout_minutes"] = _timeout(svc, fields.get("timeout_minutes"))
    fields["priority"] = fields.get("priority") or "normal"
    fields["priority_rank"] = PRIORITIES[fields["priority"]]
    if fields.get("workspace"):
        try:
            svc.store.workspaces.get(org, fields["workspace"])
        except NotFound as e:
            raise _bad("workspace", str(e)) from e
    parent = _check_parent(svc, org, fields, experiment)
    backend = _backend(svc, org, fields)
    if parent is not None and experiment.needs_checkpoint(action):
        fields.setdefault("checkpoint_choose_method", "latest_model")  # TAO's default
    if parent is not None and fields.get("checkpoint_choose_method"):
        fields["parent_checkpoint"] = checkpoints.choose(org, parent, fields)
    identity = forced() if force else fingerprint("job", fields, svc.store.cipher.key_text)
    _seal_secrets(svc, fields)
    return fields, backend, identity


def _top_level_backend_fields(fields: dict[str, Any]) -> None:
    """Seed 001's ``platform_id`` and ``num_gpu`` mean ``backend_details``' fields."""
    details = dict(fields.get("backend_details") or {})
    for top, inner in (("platform_id", "platform_id"), ("num_gpu", "num_gpus")):
        value = fields.pop(top, None)
        if value is None:
            continue
        if inner in details and details[inner] != value:
            raise _bad(top, f"{top}={value!r} disagrees with backend_details.{inner}")
        details[inner] = value
    if details:
        details.setdefault("backend_type", "local")
        fields["backend_details"] = details


def _experiment(svc: Services, org: str, fields: dict[str, Any]) -> BaseExperiment:
    """The catalog entry the job runs, which must offer its action."""
    try:
        experiment = svc.store.catalog.for_job({**fields, "org": org})
    except NoWorkload as e:
        field = "base_experiment_ids" if fields.get("base_experiment_ids") else "network_arch"
        raise _bad(field, str(e)) from e
    if experiment.kind != fields["kind"]:
        raise _bad(
            "kind",
            f"base experiment {experiment.name} runs {experiment.kind} jobs, not {fields['kind']}",
        )
    if fields.get("network_arch") and fields["network_arch"] != experiment.network_arch:
        raise _bad(
            "network_arch",
            f"base experiment {experiment.name} is a {experiment.network_arch} network, "
            f"not {fields['network_arch']}",
        )
    action = fields["action"]
    if action not in experiment.actions:
        raise _bad(
            "action",
            f"action {action} is not supported by {experiment.name}; "
            f"supported: {', '.join(experiment.actions)}",
        )
    return experiment


def _check_automl(fields: dict[str, Any], experiment: BaseExperiment) -> None:
    """AutoML settings must fit the network (its metrics, its tunables, a train action);
    a valid search is stored with its plan, everything its controller needs, so a later
    change of the catalog entry does not change a search under way."""
    settings = fields.get("automl_settings") or {}
    if not settings.get("automl_enabled"):
        return
    if fields["action"] != "train":
        raise _bad("automl_settings", f"AutoML searches train jobs, not {fields['action']}")
    found = automl.problems(settings, experiment.hyperparameters, experiment.metrics)
    if found:
        raise BadRequest(
            "invalid automl_settings: " + "; ".join(f"{k}: {v}" for k, v in found.items()),
            {"automl_settings": {k: [v] for k, v in found.items()}},
        )
    plan = automl.plan(settings, experiment, fields["specs"])
    if automl.sets_epochs(plan) and plan["epochs_key"] is None:
        raise _bad(
            "automl_settings",
            f"{plan['automl_algorithm']} sets each trial's epochs, but the specs of "
            f"{experiment.name} have no {automl.EPOCHS_KEY}",
        )
    fields["automl_plan"] = plan


def _timeout(svc: Services, requested: int | None) -> int:
    settings = svc.settings
    value = requested or settings.default_timeout_minutes
    if value > settings.max_timeout_minutes:
        message = f"must be at most {settings.max_timeout_minutes} on this deployment"
        raise BadRequest(f"timeout_minutes {message}", {"timeout_minutes": [message]})
    return value


def _check_datasets(svc: Services, org: str, fields: dict[str, Any]) -> None:
    """Dataset ids must name datasets of this org (staging resolves them at dispatch); a
    dataset job reading one takes its type and format, which choose its catalog entry."""
    for source in staging.sources(fields):
        if source.kind != "dataset":
            continue
        try:
            dataset = svc.store.datasets.get(org, source.value)
        except NotFound as e:
            raise _bad(source.field, str(e)) from e
        if fields["kind"] == "dataset":
            for key, field in (("type", "dataset_type"), ("format", "dataset_format")):
                if dataset.get(key):
                    fields.setdefault(field, dataset[key])


def _check_parent(
    svc: Services, org: str, fields: dict[str, Any], experiment: BaseExperiment
) -> dict[str, Any] | None:
    """The parent job, by the entry's rules: an action with ``parents`` needs a Done
    parent that ran one of them."""
    parent_id = fields.get("parent_job_id")
    action = fields["action"]
    allowed = experiment.action(action).parents
    if not parent_id:
        if allowed:
            raise _bad(
                "parent_job_id",
                f"{action} reads a parent job's results: give parent_job_id "
                f"(a {' or '.join(allowed)} job)",
            )
        return None
    try:
        parent = svc.store.jobs.get(org, parent_id)
    except NotFound as e:
        raise _bad("parent_job_id", str(e)) from e
    if allowed:
        if parent["action"] not in allowed:
            raise _bad(
                "parent_job_id",
                f"parent job {parent_id} is a {parent['action']} job; {action} "
                f"needs a {' or '.join(allowed)} job",
            )
        if parent["status"] != JobState.DONE.value:
            raise _bad(
                "parent_job_id",
                f"parent job {parent_id} is {parent['status']}; create this job once it is Done",
            )
    return parent


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


def _seal_secrets(svc: Services, fields: dict[str, Any]) -> None:
    """``encryption_key`` and the values of ``docker_env_vars`` go into one encrypted
    field; the job keeps the variables' names, masked, for responses."""
    secrets: dict[str, Any] = {}
    if fields.get("encryption_key"):
        secrets["encryption_key"] = fields["encryption_key"]
    fields.pop("encryption_key", None)
    env = fields.get("docker_env_vars")
    if env:
        secrets["docker_env_vars"] = dict(env)
        fields["docker_env_vars"] = {name: MASK for name in env}
    if secrets:
        fields["secrets_enc"] = svc.store.cipher.encrypt(secrets)


def resume_changes(svc: Services, job: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """What a resume may change: specs (validated again) and the timeout."""
    changes: dict[str, Any] = {}
    if body.get("specs"):
        try:
            experiment = svc.store.catalog.for_job(job)
        except NoWorkload as e:
            raise _bad("specs", str(e)) from e
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
