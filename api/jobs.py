"""The unified jobs endpoint (seed 000, API v2): create, watch, cancel.

Colon routes (``/jobs:schema``, ``/jobs/{id}:logs``) are real Flask routes;
job ids use a converter that stops at the colon.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.views import MethodView

from jobyard.api import accelerators, workload_templates
from jobyard.api.catalog import catalog_entry, catalog_page
from jobyard.api.errors import BadRequest, Refused
from jobyard.api.job_files import result_names
from jobyard.api.jobspec import resume_changes, validated_job
from jobyard.api.listing import count_route, requested_page
from jobyard.api.parser import Blueprint
from jobyard.api.services import principal, services
from jobyard.backends import registry
from jobyard.backends.base import Capability
from jobyard.schemas import metrics
from jobyard.schemas.checkpoints import epoch_models
from jobyard.schemas.common import BulkResultsSchema
from jobyard.schemas.events import event_text
from jobyard.schemas.job import (
    FINAL_STATES,
    JOB_FIELDS,
    BaseExperimentListArgsSchema,
    BaseExperimentListSchema,
    BulkCancelSchema,
    CompareArgsSchema,
    CompareSchema,
    EpochNumbersSchema,
    EventArgsSchema,
    EventsSchema,
    GpuTypesSchema,
    JobCreateSchema,
    JobFilterArgsSchema,
    JobIdsSchema,
    JobListArgsSchema,
    JobListSchema,
    JobSchema,
    LogArgsSchema,
    MetricArgsSchema,
    MetricsSchema,
    PauseSchema,
    ResumeSchema,
    SchemaArgsSchema,
    SpecSchemaSchema,
)
from jobyard.store.errors import Conflict, NotFound
from jobyard.store.fingerprint import forced
from jobyard.store.jobs import public
from jobyard.workers import enqueue

blp = Blueprint(
    "jobs",
    __name__,
    url_prefix="/api/v2/orgs/<string:org_name>",
    description="Experiment jobs: train, evaluate, export, inference",
)
TEXT = {
    "200": {"description": "Plain text", "content": {"text/plain": {"schema": {"type": "string"}}}}
}


@blp.route("/jobs")
class JobCollection(MethodView):
    @blp.arguments(JobListArgsSchema, location="query")
    @blp.response(200, JobListSchema)
    def get(self, args: dict[str, Any], org_name: str) -> dict[str, Any]:
        """List jobs (TAO's filters and paging, or seed 003's filterBy/search/sortBy)"""
        page = requested_page(args, JOB_FIELDS)
        docs, info = services().store.jobs.list_page(org_name, page)
        return {"jobs": [public(d) for d in docs], "pagination_info": info}

    @blp.arguments(JobCreateSchema)
    @blp.response(201, JobSchema)
    def post(self, body: dict[str, Any], org_name: str) -> dict[str, Any]:
        """Create a job

        Validated, stored as Pending and handed to the backend's queue; the
        call returns at once. Specs are checked against the action's schema
        (see ``jobs:schema``). With ``template_id`` the template's spec is the
        request and the other fields given override it.
        """
        svc = services()
        if body.get("template_id"):
            body = workload_templates.job_request(org_name, request.get_json(force=True))
        fields, backend, fingerprint = validated_job(svc, org_name, body)
        doc = svc.store.jobs.create(org_name, principal().user_id, fields, backend, fingerprint)
        enqueue.dispatch(svc.celery, svc.broker, doc)
        return public(doc)

    @blp.arguments(JobIdsSchema)
    @blp.response(200, BulkResultsSchema)
    def delete(self, body: dict[str, Any], org_name: str) -> dict[str, Any]:
        """Delete several finished jobs; reports the outcome of each"""
        results = []
        for job_id in body["job_ids"]:
            try:
                _delete(org_name, job_id)
                results.append({"id": job_id, "status": "deleted"})
            except NotFound as e:
                results.append({"id": job_id, "status": "not_found", "error_desc": str(e)})
            except Conflict as e:
                results.append({"id": job_id, "status": "refused", "error_desc": str(e)})
        return {"results": results}


def _delete(org: str, job_id: str) -> dict[str, Any]:
    store = services().store
    doc = store.jobs.delete(org, job_id)
    trials = [t["_id"] for t in store.trials.of(job_id)] if doc.get("automl_plan") else []
    for gone in [job_id, *trials]:  # a search goes with its trials and its study
        store.events.delete_job(gone)
        store.logs.delete_job(gone)
        store.curves.delete_job(gone)
    if doc.get("automl_plan"):
        store.trials.delete(job_id)
    return doc


count_route(
    blp,
    "/jobs/count",
    JobFilterArgsSchema,
    JOB_FIELDS,
    "jobs",
    lambda org, page, _: services().store.jobs.count(org, page),
)


@blp.route("/jobs:cancel")
class BulkCancel(MethodView):
    @blp.arguments(BulkCancelSchema)
    @blp.response(200, BulkResultsSchema)
    def post(self, body: dict[str, Any], org_name: str) -> dict[str, Any]:
        """Cancel many jobs (listed, of a workspace, or of an experiment); one result each"""
        store = services().store
        results = []
        for job_id in store.jobs.select_ids(org_name, body):
            try:
                doc = store.jobs.request_cancel(org_name, job_id)
                results.append({"id": job_id, "status": doc["status"]})
            except NotFound as e:
                results.append({"id": job_id, "status": "not_found", "error_desc": str(e)})
            except Conflict:
                status = store.jobs.get(org_name, job_id)["status"]
                results.append(
                    {
                        "id": job_id,
                        "status": "refused",
                        "error_desc": f"job is {status}; nothing to cancel",
                    }
                )
        return {"results": results}


@blp.route("/jobs:list_base_experiments")
class BaseExperiments(MethodView):
    @blp.arguments(BaseExperimentListArgsSchema, location="query")
    @blp.response(200, BaseExperimentListSchema)
    def get(self, args: dict[str, Any], org_name: str) -> dict[str, Any]:
        """List the base experiments jobs can start from (the catalog: global and the org's)"""
        return catalog_page(org_name, args)


@blp.route("/jobs:schema")
class SpecSchema(MethodView):
    @blp.arguments(SchemaArgsSchema, location="query")
    @blp.response(200, SpecSchemaSchema)
    def get(self, args: dict[str, Any], org_name: str) -> dict[str, Any]:
        """Default specs and their JSON schema for an action"""
        experiment = catalog_entry(org_name, args)
        action = args["action"]
        if action not in experiment.actions:
            raise BadRequest(
                f"action {action} is not available for {experiment.name}; "
                f"available: {', '.join(experiment.actions)}"
            )
        return {
            "default": experiment.default_spec(action),
            "schema": experiment.json_schema(action),
        }


@blp.route("/jobs:gpu_types")
class GpuTypes(MethodView):
    @blp.response(200, GpuTypesSchema)
    def get(self, org_name: str) -> dict[str, Any]:
        """Accelerator types jobs can ask for on this deployment"""
        return accelerators.gpu_types(services(), org_name)


@blp.route("/jobs/<id:job_id>")
class JobItem(MethodView):
    @blp.response(200, JobSchema)
    def get(self, org_name: str, job_id: str) -> dict[str, Any]:
        """Get a job: status, specs and progress (job_details)"""
        return public(services().store.jobs.get(org_name, job_id))

    @blp.response(200, JobSchema)
    def delete(self, org_name: str, job_id: str) -> dict[str, Any]:
        """Delete a finished job with its events and logs"""
        return public(_delete(org_name, job_id))


@blp.route("/jobs/<id:job_id>:cancel")
class JobCancel(MethodView):
    @blp.response(200, JobSchema)
    def post(self, org_name: str, job_id: str) -> dict[str, Any]:
        """Cancel a job; returns at once, the run is stopped by the next reconcile"""
        store = services().store
        try:
            return public(store.jobs.request_cancel(org_name, job_id))
        except Conflict as e:
            status = store.jobs.get(org_name, job_id)["status"]
            raise Refused(f"job {job_id} is {status}; there is nothing to cancel") from e


PAUSABLE_ACTIONS = frozenset({"train", "retrain"})
FINAL = frozenset(s.value for s in FINAL_STATES)
RETRY_FIELDS = (
    "kind",
    "action",
    "name",
    "description",
    "network_arch",
    "specs",
    "workspace",
    "train_dataset_uris",
    "eval_dataset_uri",
    "inference_dataset_uri",
    "calibration_dataset_uri",
    "dataset_format",
    "dataset_type",
    "skip_dataset_validation",
    "base_experiment_ids",
    "parent_job_id",
    "backend_details",
    "timeout_minutes",
    "encryption_key",
    "secrets_enc",
    "docker_env_vars",
    "retain_checkpoints_for_resume",
    "early_stop_epoch",
    "catalog_id",
    "status_protocol",
    "checkpoint_choose_method",
    "checkpoint_epoch_number",
    "parent_checkpoint",
)


@blp.route("/jobs/<id:job_id>:pause")
class JobPause(MethodView):
    @blp.arguments(PauseSchema, required=False)
    @blp.response(200, JobSchema)
    def post(self, body: dict[str, Any] | None, org_name: str, job_id: str) -> dict[str, Any]:
        """Pause a training job; returns at once (Pausing)

        Graceful (the default): the workload gets SIGTERM, writes a checkpoint
        and exits, and the job becomes Paused. After the grace period the run
        is killed and the last checkpoint is kept.
        """
        store = services().store
        job = store.jobs.get(org_name, job_id)
        if job["action"] not in PAUSABLE_ACTIONS:
            raise Refused(f"a {job['action']} job cannot be paused; only train jobs can")
        graceful = (body or {}).get("graceful", True)
        kind = registry.split_target(job["backend"])[0]
        if graceful and Capability.GRACEFUL_STOP not in registry.capabilities(kind):
            raise Refused(
                f"backend {kind} cannot stop a run gracefully (no checkpoint on the way "
                'out); send {"graceful": false} to pause it at once'
            )
        try:
            return public(store.jobs.request_pause(org_name, job_id, graceful))
        except Conflict as e:
            status = store.jobs.get(org_name, job_id)["status"]
            raise Refused(f"job {job_id} is {status}; only a Running job can be paused") from e


@blp.route("/jobs/<id:job_id>:resume")
class JobResume(MethodView):
    @blp.arguments(ResumeSchema, required=False)
    @blp.response(200, JobSchema)
    def post(self, body: dict[str, Any] | None, org_name: str, job_id: str) -> dict[str, Any]:
        """Resume a Paused job as a new run from its latest checkpoint"""
        svc = services()
        job = svc.store.jobs.get(org_name, job_id)
        changes = resume_changes(svc, job, body or {})
        try:
            doc = svc.store.jobs.resume(org_name, job_id, changes)
        except Conflict as e:
            status = svc.store.jobs.get(org_name, job_id)["status"]
            raise Refused(f"job {job_id} is {status}; only a Paused job can be resumed") from e
        enqueue.dispatch(svc.celery, svc.broker, doc)
        return public(doc)


@blp.route("/jobs/<id:job_id>:retry")
class JobRetry(MethodView):
    @blp.response(201, JobSchema)
    def post(self, org_name: str, job_id: str) -> dict[str, Any]:
        """Run a finished job again: a new job with the same parameters"""
        svc = services()
        job = svc.store.jobs.get(org_name, job_id)
        if job["status"] not in FINAL:
            raise Refused(f"job {job_id} is {job['status']}; only a finished job can be retried")
        fields = {k: job[k] for k in RETRY_FIELDS if k in job}
        doc = svc.store.jobs.create(org_name, principal().user_id, fields, job["backend"], forced())
        enqueue.dispatch(svc.celery, svc.broker, doc)
        return public(doc)


@blp.route("/jobs/<id:job_id>:get_epoch_numbers")
class EpochNumbers(MethodView):
    @blp.response(200, EpochNumbersSchema)
    def get(self, org_name: str, job_id: str) -> dict[str, Any]:
        """Epochs that have a checkpoint in the job's results

        From the checkpoint events; without ``retain_checkpoints_for_resume``
        the workload keeps only the newest epoch checkpoint.
        """
        store = services().store
        job = store.jobs.get(org_name, job_id)
        events = store.events.list_for_job(org_name, job_id)
        epochs = sorted(
            {e["epoch"] for e in events if isinstance(e.get("epoch"), int) and e.get("checkpoint")}
        )
        if not job.get("retain_checkpoints_for_resume") and epochs:
            epochs = epochs[-1:]
        if job.get("handle") and (files := sorted(epoch_models(result_names(org_name, job)))):
            epochs = files  # what a derived job can start from (checkpoint_epoch_number)
        return {"epoch_numbers": epochs, "data": epochs}


@blp.route("/jobs/<id:job_id>:logs")
class JobLogs(MethodView):
    @blp.arguments(LogArgsSchema, location="query")
    @blp.doc(responses=TEXT)
    def get(self, args: dict[str, Any], org_name: str, job_id: str) -> Response:
        """The job's output as plain text

        ``offset`` reads from a byte position (the ``X-Next-Offset`` header says
        where to continue); ``tail`` returns the last lines.
        """
        store = services().store
        job = store.jobs.get(org_name, job_id)
        if job.get("automl_plan"):
            data, next_offset = _search_logs(org_name, job, args)
        elif "tail" in args:
            data, next_offset = store.logs.tail(org_name, job_id, args["tail"]), job["log_bytes"]
        else:
            data, next_offset = store.logs.read(
                org_name, job_id, args.get("offset", 0), args["limit"]
            )
        response = Response(data, mimetype="text/plain")
        response.headers["X-Next-Offset"] = str(next_offset)
        return response


@blp.route("/jobs/<id:job_id>:metrics")
class JobMetrics(MethodView):
    @blp.arguments(MetricArgsSchema, location="query")
    @blp.response(200, MetricsSchema)
    def get(self, args: dict[str, Any], org_name: str, job_id: str) -> dict[str, Any]:
        """The job's curves (``type=scalar``: metric -> variant -> x, y, t, run over every
        run, downsampled to ``max_points`` keeping each bucket's min and max), or its
        ``plot`` / ``vector`` events (seed 004's shapes)"""
        store = services().store
        store.jobs.get(org_name, job_id)  # 404 for another org's job
        kind = args["type"]
        out: dict[str, Any] = {"job_id": job_id, "type": kind}
        if kind == "scalar":
            docs = store.curves.for_jobs(org_name, [job_id], args["times"])
            which = (args.get("metric"), args.get("variant"))
            out["metrics"] = metrics.curves(docs, args["max_points"], *which)
        else:
            events = store.events.of_type(org_name, [job_id], kind)
            out["events"] = metrics.attached(events, kind, args.get("metric"))
        return out


@blp.route("/jobs:compare")
class CompareJobs(MethodView):
    @blp.arguments(CompareArgsSchema, location="query")
    @blp.response(200, CompareSchema)
    def get(self, args: dict[str, Any], org_name: str) -> dict[str, Any]:
        """One metric of several jobs side by side (``job_ids=a,b,c&metric=accuracy``)"""
        ids = list(dict.fromkeys(i.strip() for i in args["job_ids"].split(",") if i.strip()))
        if not 1 <= len(ids) <= 20:
            raise BadRequest("give 1 to 20 job_ids", {"job_ids": ["1 to 20, comma-separated"]})
        store = services().store
        jobs = [store.jobs.get(org_name, job_id) for job_id in ids]  # 404 names the first
        by_job: dict[str, list[dict[str, Any]]] = {}
        for doc in store.curves.for_jobs(org_name, ids):
            by_job.setdefault(doc["job_id"], []).append(doc)
        which = (args["metric"], args.get("variant"))
        rows = []
        for job in jobs:
            found = metrics.curves(by_job.get(job["_id"], []), args["max_points"], *which)
            stats = metrics.matching(job.get("last_metrics") or {}, *which)
            rows.append(
                {
                    "id": job["_id"],
                    "name": job.get("name", ""),
                    "status": job["status"],
                    "variants": {v: c for curves in found.values() for v, c in curves.items()},
                    "last_metrics": stats,
                }
            )
        return {"metric": args["metric"], "jobs": rows}


@blp.route("/jobs/<id:job_id>:events")
class JobEvents(MethodView):
    @blp.arguments(EventArgsSchema, location="query")
    @blp.response(200, EventsSchema)
    def get(self, args: dict[str, Any], org_name: str, job_id: str) -> dict[str, Any]:
        """Every status event the workload emitted, in order, over all runs

        As TAO, one line of text per event; ``detailed=true`` returns the event
        objects (seq, run, type, status, epoch, metrics ...).
        """
        store = services().store
        job = store.jobs.get(org_name, job_id)  # 404 for another org's job
        if job.get("automl_plan"):
            events = _search_events(org_name, job_id, args)
        else:
            events = store.events.list_for_job(
                org_name, job_id, args.get("run"), args.get("after_seq")
            )
        return {"events": events if args["detailed"] else [event_text(e) for e in events]}


def _trials_asked(org: str, job_id: str, number: int | None) -> list[dict[str, Any]]:
    """A search's trials, or the one numbered (a 404 naming the numbers it has)."""
    trials = services().store.trials.of(job_id, None if number is None else [number])
    if number is not None and not trials:
        have = services().store.trials.count(job_id)
        raise NotFound("trial", f"{number} of search {job_id} (it has trials 0 to {have - 1})")
    return trials


def _search_events(org: str, job_id: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    """A search's events are its trials', in trial order, each carrying its number."""
    events = []
    for trial in _trials_asked(org, job_id, args.get("automl_experiment_number")):
        number = trial["automl_experiment_number"]
        found = services().store.events.list_for_job(
            org, trial["_id"], args.get("run"), args.get("after_seq")
        )
        events += [{**e, "automl_experiment_number": number} for e in found]
    return events


def _search_logs(org: str, job: dict[str, Any], args: dict[str, Any]) -> tuple[bytes, int]:
    """One trial's log (``automl_experiment_index``, seed 001's name), read as any job's;
    without it, every trial's log in trial order, each under a line naming the trial."""
    store = services().store
    index = args.get("automl_experiment_index")
    if index is not None:
        (trial,) = _trials_asked(org, job["_id"], index)
        if "tail" in args:
            return store.logs.tail(org, trial["_id"], args["tail"]), int(trial["log_bytes"])
        return store.logs.read(org, trial["_id"], args.get("offset", 0), args["limit"])
    text = b""
    for trial in _trials_asked(org, job["_id"], None):
        data, _ = store.logs.read(org, trial["_id"], 0, args["limit"])
        text += f"=== trial {trial['automl_experiment_number']} ===\n".encode() + data
    if "tail" in args:
        text = b"".join(text.splitlines(keepends=True)[-args["tail"] :])
        return text, len(text)
    offset = args.get("offset", 0)
    return text[offset : offset + args["limit"]], min(len(text), offset + args["limit"])
