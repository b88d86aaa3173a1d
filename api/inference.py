"""Inference microservices over REST (seed 000): start a model server for a trained job,
watch it become Ready, send it requests, stop it.

A service is a job of its parent's catalog entry's ``serve`` action (``workers.serving``),
so it is dispatched, counted against quotas, watched and stopped like any run. Requests
go through the API: the caller's org is checked, ``media`` is read from the service's
workspace (never from a URL the caller names), and every failure has the one error shape.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import mimetypes
import posixpath
from typing import Any

import urllib3
from flask.views import MethodView

from jobyard.api import checkpoints
from jobyard.api.datasets import workspace_storage
from jobyard.api.errors import ApiError, BadRequest, Missing, Refused
from jobyard.api.job_files import result_names
from jobyard.api.jobspec import validated_job
from jobyard.api.listing import requested_page
from jobyard.api.parser import Blueprint
from jobyard.api.services import principal, services
from jobyard.backends.errors import BackendError
from jobyard.backends.storage import StorageError, bucket_of
from jobyard.schemas.inference import (
    MAX_MEDIA_BYTES,
    STARTUP_SECONDS,
    InferenceSchema,
    ServiceListArgsSchema,
    ServiceListSchema,
    ServiceSchema,
    StartSchema,
    service_state,
    status_query,
    view,
)
from jobyard.schemas.job import JOB_FIELDS, SERVE_ACTION
from jobyard.schemas.staging import classify
from jobyard.store.errors import Conflict, NotFound
from jobyard.workers import enqueue

logger = logging.getLogger(__name__)
blp = Blueprint(
    "inference",
    __name__,
    url_prefix="/api/v2/orgs/<string:org_name>",
    description="Inference microservices: model servers of trained jobs",
)
_pool = urllib3.PoolManager(num_pools=64, maxsize=16, retries=False)


class BadGateway(ApiError):
    status = 502


class GatewayTimeout(ApiError):
    status = 504


def _service(org: str, service_id: str) -> dict[str, Any]:
    job = services().store.jobs.get(org, service_id)
    if job.get("action") != SERVE_ACTION:
        raise NotFound("inference microservice", service_id)
    return job


# --- start -----------------------------------------------------------------------------


def _model_file(org: str, parent: dict[str, Any], body: dict[str, Any]) -> str:
    """The parent's file to serve: ``model_path`` (a path in its results, or a file name
    found there once; one that is not there is passed on, and the server reports it), else
    the checkpoint ``checkpoint_choose_method`` picks (default best_model)."""
    wanted = body.get("model_path")
    if not wanted:
        fields = {
            "checkpoint_choose_method": body.get("checkpoint_choose_method") or "best_model",
            "checkpoint_epoch_number": body.get("checkpoint_epoch_number"),
            "parent_job_id": parent["_id"],
        }
        return checkpoints.choose(org, parent, fields)
    cleaned = posixpath.normpath(str(wanted).replace("\\", "/").lstrip("/"))
    if cleaned.startswith("..") or cleaned == ".":
        message = f"model_path {wanted!r} is outside the parent job's results"
        raise BadRequest(message, {"model_path": [message]})
    try:
        names = result_names(org, parent)
    except (BackendError, StorageError):  # unreadable here: the server says what is missing
        return cleaned
    if cleaned in names:
        return cleaned
    same = [n for n in names if posixpath.basename(n) == posixpath.basename(cleaned)]
    return same[0] if len(same) == 1 else cleaned


def start(org: str, body: dict[str, Any]) -> dict[str, Any]:
    svc = services()
    parent = svc.store.jobs.get(org, body["parent_job_id"])
    fields: dict[str, Any] = {
        "kind": body["kind"],
        "action": SERVE_ACTION,
        "name": body.get("name") or f"serve {parent.get('name') or parent['_id']}",
        "parent_job_id": parent["_id"],
        "base_experiment_ids": [parent["catalog_id"]] if parent.get("catalog_id") else [],
        "specs": {},
        "force_create": True,  # two servers of one model are two services
    }
    for key in ("network_arch", "workspace"):
        if body.get(key) or parent.get(key):
            fields[key] = body.get(key) or parent.get(key)
    details = dict(parent.get("backend_details") or {})
    for key in ("num_gpus", "gpu_type"):  # asked of the backend, as a job's are
        if body.get(key) is not None:
            details[key] = body[key]
    if details:
        fields["backend_details"] = details
    job, backend, fingerprint = validated_job(svc, org, fields)
    entry = svc.store.catalog.for_job({**job, "org": org})
    action = entry.action(SERVE_ACTION)
    model = _model_file(org, parent, body)
    job["parent_checkpoint"] = model
    job["serving"] = {
        "model": model,
        "health_path": action.health_path,
        "inference_path": action.inference_path,
        "idle_timeout_minutes": body["idle_timeout_minutes"],
        "max_restarts": body["max_restarts"],
        "startup_seconds": STARTUP_SECONDS,
        "restarts": 0,
        "requests": 0,
        "docker_image": body.get("docker_image"),
        "gpu_type": body.get("gpu_type"),
        "num_gpus": body.get("num_gpus"),
        "url": None,
        "ready_since": None,
        "last_request": None,
        "last_error": None,
    }
    doc = svc.store.jobs.create(org, principal().user_id, job, backend, fingerprint)
    enqueue.dispatch(svc.celery, svc.broker, doc)
    return view(doc)


# --- inference -------------------------------------------------------------------------


def _media_input(org: str, job: dict[str, Any], media: str) -> str:
    """A file of the service's workspace as a data URI: ``aws://``/``seaweedfs://`` (or
    ``s3://``) bucket/key in the workspace's bucket, or a key inside the workspace."""
    text = media.replace("s3://", "aws://", 1) if media.startswith("s3://") else media
    workspace_id = job.get("workspace")
    if not workspace_id:
        message = "media needs the service's workspace (start it with workspace)"
        raise BadRequest(message, {"media": [message]})
    try:
        source = classify("media", "media", text)
    except ValueError as e:
        raise BadRequest(f"media: {e}", {"media": [str(e)]}) from e
    if source.kind == "url":
        message = "media is read from the service's workspace, never fetched from a URL"
        raise BadRequest(message, {"media": [message]})
    key = source.value.lstrip("/")
    if source.kind == "object" and source.bucket:
        bucket = bucket_of(services().store.workspaces.config(org, str(workspace_id)).details)
        if bucket != source.bucket:
            message = f"media {media} is not in the service's workspace bucket {bucket!r}"
            raise BadRequest(message, {"media": [message]})
    storage = workspace_storage(org, str(workspace_id))
    try:
        info = storage.stat(key)
        if info.size > MAX_MEDIA_BYTES:
            raise BadRequest(f"media {media} is {info.size} bytes; at most {MAX_MEDIA_BYTES}")
        with storage.open(key) as stream:
            data = stream.read(MAX_MEDIA_BYTES + 1)
    except StorageError as e:
        raise Missing(f"media {media}: {e}") from e
    kind = mimetypes.guess_type(key)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def _check_base64(inputs: list[str]) -> None:
    for index, item in enumerate(inputs):
        payload = item.partition(",")[2] if item.startswith("data:") else item
        try:
            base64.b64decode(payload, validate=True)
        except ValueError as e:
            message = f"input[{index}] is not base64 ({e})"
            raise BadRequest(message, {"input": {str(index): [message]}}) from e


def infer(org: str, service_id: str, body: dict[str, Any]) -> dict[str, Any]:
    svc = services()
    job = _service(org, service_id)
    state = service_state(job)
    serving = job.get("serving") or {}
    if state != "Ready" or not serving.get("url"):
        raise Refused(f"inference microservice {service_id} is {state}, not Ready; see :status")
    request = {k: v for k, v in body.items() if k != "media"}
    if body.get("media"):
        request["input"] = [_media_input(org, job, body["media"])]
    _check_base64(request["input"])
    base = str(serving["url"])
    if serving.get("tunnel"):  # a SLURM node: through the login node
        with svc.resources.open_backend(job["backend"]) as backend:
            base = backend.reach(base)
    url = base.rstrip("/") + str(serving.get("inference_path") or "/v1/infer")
    timeout = svc.settings.inference_timeout_seconds
    try:
        response = _pool.request(
            "POST",
            url,
            body=json.dumps(request).encode(),
            headers={"Content-Type": "application/json"},
            timeout=urllib3.Timeout(connect=min(5.0, timeout), read=timeout),
        )
    except urllib3.exceptions.TimeoutError as e:
        svc.store.jobs.served(service_id, f"no answer within {timeout} s")
        raise GatewayTimeout(f"the model server gave no answer within {timeout} s") from e
    except urllib3.exceptions.HTTPError as e:
        svc.store.jobs.served(service_id, f"unreachable: {e}")
        raise BadGateway(f"the model server of {service_id} cannot be reached: {e}") from e
    answer = _json(response.data)
    if response.status >= 400:
        words = answer.get("error") if isinstance(answer, dict) else None
        message = f"the model server refused the request: {words or response.status}"
        svc.store.jobs.served(service_id, message)
        if 400 <= response.status < 500:
            raise BadRequest(message)
        raise BadGateway(message)
    svc.store.jobs.served(service_id)
    if not isinstance(answer, dict):
        raise BadGateway("the model server's answer is not a JSON object")
    return answer


def _json(data: bytes) -> Any:
    try:
        return json.loads(data or b"null")
    except ValueError:
        return None


# --- routes ----------------------------------------------------------------------------


@blp.route("/inference_microservices:start")
class Start(MethodView):
    @blp.arguments(StartSchema)
    @blp.response(201, ServiceSchema)
    def post(self, body: dict[str, Any], org_name: str) -> dict[str, Any]:
        """Start a model server for a Done job's model; returns at once (Pending)"""
        return start(org_name, body)


@blp.route("/inference_microservices")
class ServiceList(MethodView):
    @blp.arguments(ServiceListArgsSchema, location="query")
    @blp.response(200, ServiceListSchema)
    def get(self, args: dict[str, Any], org_name: str) -> dict[str, Any]:
        """List the org's inference microservices, newest first"""
        page = requested_page({k: v for k, v in args.items() if k != "status"}, JOB_FIELDS)
        wanted: list[dict[str, Any]] = [{"action": SERVE_ACTION}]
        if args.get("status"):
            wanted.append(status_query(args["status"]))
        match = {"$and": [page.match, *wanted]} if page.match else {"$and": wanted}
        docs, info = services().store.jobs.list_page(
            org_name, dataclasses.replace(page, match=match)
        )
        return {"inference_microservices": [view(d) for d in docs], "pagination_info": info}


@blp.route("/inference_microservices/<id:service_id>")
class Service(MethodView):
    @blp.response(200, ServiceSchema)
    def get(self, org_name: str, service_id: str) -> dict[str, Any]:
        """One inference microservice"""
        return view(_service(org_name, service_id))

    @blp.response(200, ServiceSchema)
    def delete(self, org_name: str, service_id: str) -> dict[str, Any]:
        """Remove a stopped inference microservice"""
        job = _service(org_name, service_id)
        store = services().store
        store.jobs.delete(org_name, service_id)
        store.events.delete_job(service_id)
        store.logs.delete_job(service_id)
        return view(job)


@blp.route("/inference_microservices/<id:service_id>:status")
class Status(MethodView):
    @blp.response(200, ServiceSchema)
    def get(self, org_name: str, service_id: str) -> dict[str, Any]:
        """Pending, Starting, Ready, Stopping, Stopped or Error, with the reason"""
        return view(_service(org_name, service_id))


@blp.route("/inference_microservices/<id:service_id>:inference")
class Inference(MethodView):
    @blp.arguments(InferenceSchema)
    @blp.response(200)
    def post(self, body: dict[str, Any], org_name: str, service_id: str) -> dict[str, Any]:
        """Send a request to the model server: ``input`` (base64 images) or ``media``

        A service that is not Ready is a 409 saying its state; the server's own refusal
        of an input is a 400 with its words; no answer in time is a 504.
        """
        return infer(org_name, service_id, body)


@blp.route("/inference_microservices/<id:service_id>:stop")
class Stop(MethodView):
    @blp.response(200, ServiceSchema)
    def post(self, org_name: str, service_id: str) -> dict[str, Any]:
        """Stop the model server; returns at once (Stopping, then Stopped)"""
        _service(org_name, service_id)
        store = services().store
        try:
            return view(store.jobs.request_cancel(org_name, service_id))
        except Conflict as e:
            state = service_state(store.jobs.get(org_name, service_id))
            raise Refused(f"inference microservice {service_id} is {state}") from e
