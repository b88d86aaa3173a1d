"""Inference microservices (seed 000): request shapes, and the service a model server's
job is shown as. A service is a job of the catalog entry's ``serve`` action; its state
is the job's, refined by whether the server has answered its health check."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from jobyard.schemas.common import ListArgsSchema, PaginationInfoSchema, StrictSchema, Timestamp
from jobyard.schemas.job import ID, NETWORK_ARCH, JobState

CHECKPOINT_METHODS = ("best_model", "latest_model", "from_epoch_number")
DEFAULT_IDLE_MINUTES = 60
DEFAULT_MAX_RESTARTS = 3
STARTUP_SECONDS = 300  # a server not ready this long after it started is an Error
MAX_INPUTS = 64
MAX_MEDIA_BYTES = 8 * 1024 * 1024


class StartSchema(StrictSchema):
    """Seed 000's body, as written, and jobyard's own knobs."""

    parent_job_id = fields.String(required=True, validate=ID)
    kind = fields.String(load_default="experiment", validate=validate.OneOf(["experiment"]))
    network_arch = fields.String(validate=NETWORK_ARCH)
    workspace = fields.String(validate=ID)
    docker_image = fields.String(validate=validate.Length(max=500))
    gpu_type = fields.String(validate=validate.Length(max=100))
    num_gpus = fields.Integer(validate=validate.Range(0, 64))
    model_path = fields.String(
        validate=validate.Length(1, 1024),
        metadata={"description": "a file of the parent's results (:list_files), or its name"},
    )
    checkpoint_choose_method = fields.String(validate=validate.OneOf(CHECKPOINT_METHODS))
    checkpoint_epoch_number = fields.Raw()
    name = fields.String(validate=validate.Length(max=500))
    idle_timeout_minutes = fields.Integer(
        load_default=DEFAULT_IDLE_MINUTES, validate=validate.Range(1, 10080)
    )
    max_restarts = fields.Integer(load_default=DEFAULT_MAX_RESTARTS, validate=validate.Range(0, 20))


class InferenceSchema(ma.Schema):
    """Seed 000's two shapes: images inline, or one media file of the workspace."""

    class Meta:
        unknown = ma.INCLUDE  # passed on to the model server (``model``, ``prompt`` ...)

    input = fields.List(fields.String(), validate=validate.Length(1, MAX_INPUTS))
    media = fields.String(validate=validate.Length(1, 2048))
    model = fields.String(validate=validate.Length(max=500))
    prompt = fields.String(validate=validate.Length(max=10000))

    @ma.validates_schema
    def _one(self, data: dict[str, Any], **_: Any) -> None:
        if ("input" in data) == ("media" in data):
            raise ma.ValidationError("give input (base64 images) or media (a workspace file)")


class ServiceSchema(ma.Schema):
    id = fields.String()
    name = fields.String()
    status = fields.String(
        metadata={"description": "Pending, Starting, Ready, Stopping, Stopped or Error"}
    )
    message = fields.String(metadata={"description": "what it is doing, or why it failed"})
    parent_job_id = fields.String()
    model = fields.String(metadata={"description": "the model file, in the parent's results"})
    network_arch = fields.String()
    backend = fields.String()
    docker_image = fields.String(allow_none=True)
    gpu_type = fields.String(allow_none=True)
    num_gpus = fields.Integer(allow_none=True)
    ready_since = Timestamp(allow_none=True)
    requests_served = fields.Integer()
    last_request = Timestamp(allow_none=True)
    last_error = fields.String(allow_none=True)
    restarts = fields.Integer()
    max_restarts = fields.Integer()
    idle_timeout_minutes = fields.Integer()
    created_on = Timestamp()
    last_modified = Timestamp()


class ServiceListSchema(ma.Schema):
    inference_microservices = fields.List(fields.Nested(ServiceSchema))
    pagination_info = fields.Nested(PaginationInfoSchema)


SERVICE_STATES = ("Pending", "Starting", "Ready", "Stopping", "Stopped", "Error")


class ServiceListArgsSchema(ListArgsSchema):
    status = fields.String(validate=validate.OneOf(SERVICE_STATES))


def service_state(job: Mapping[str, Any]) -> str:
    """The job's state as a service's: Running is Starting until the health check
    answers, and Ready after; Canceling and Canceled are Stopping and Stopped."""
    state = JobState(job["status"])
    ready = (job.get("serving") or {}).get("ready_since")
    return {
        JobState.PENDING: "Pending",
        JobState.RESUMING: "Starting",
        JobState.RUNNING: "Ready" if ready else "Starting",
        JobState.CANCELING: "Stopping",
        JobState.CANCELED: "Stopped",
        JobState.ERROR: "Error",
        JobState.DONE: "Stopped",
    }.get(state, state.value)


def status_query(state: str) -> dict[str, Any]:
    """The job filter of the services in ``state`` (``service_state``'s inverse), so a
    list filtered by state pages and counts in MongoDB."""
    running = JobState.RUNNING.value
    queries: dict[str, dict[str, Any]] = {
        "Pending": {"status": JobState.PENDING.value},
        "Starting": {
            "$or": [
                {"status": JobState.RESUMING.value},
                {"status": running, "serving.ready_since": None},
            ]
        },
        "Ready": {"status": running, "serving.ready_since": {"$gt": 0}},
        "Stopping": {"status": JobState.CANCELING.value},
        "Stopped": {"status": {"$in": [JobState.CANCELED.value, JobState.DONE.value]}},
        "Error": {"status": JobState.ERROR.value},
    }
    return queries[state]


def view(job: Mapping[str, Any]) -> dict[str, Any]:
    serving = job.get("serving") or {}
    message = ((job.get("job_details") or {}).get("detailed_status") or {}).get("message", "")
    status = service_state(job)
    return {
        "id": job["_id"],
        "name": job.get("name") or "",
        "status": status,
        "message": message,
        "parent_job_id": job.get("parent_job_id"),
        "model": serving.get("model"),
        "network_arch": job.get("network_arch"),
        "backend": job.get("backend"),
        "docker_image": serving.get("docker_image"),
        "gpu_type": serving.get("gpu_type"),
        "num_gpus": serving.get("num_gpus"),
        "ready_since": serving.get("ready_since"),
        "requests_served": int(serving.get("requests") or 0),
        "last_request": serving.get("last_request"),
        "last_error": serving.get("last_error") or (message if status == "Error" else None),
        "restarts": int(serving.get("restarts") or 0),
        "max_restarts": int(serving.get("max_restarts") or 0),
        "idle_timeout_minutes": serving.get("idle_timeout_minutes"),
        "created_on": job.get("created_on"),
        "last_modified": job.get("last_modified"),
    }
