"""A job's files (seed 000, "Download Job Files"): ``:list_files``,
``:download`` (everything, as a tar.gz stream) and
``:download_selective_files`` (the best or latest model, or listed files).

Files are the run's results as its backend keeps them
(``Backend.list_results``/``open_result``), plus the job's log (stored in
MongoDB) and specs as ``logs_from_toolkit.txt`` and ``experiment_specs.json``.
Archives are streamed chunk by chunk (``jobyard.backends.storage.tarstream``), never
built in memory.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import IO, Any

import marshmallow as ma
from flask import Response, stream_with_context
from flask.views import MethodView
from marshmallow import fields, validate

from jobyard.api.datasets import workspace_storage
from jobyard.api.errors import Missing
from jobyard.api.parser import Blueprint
from jobyard.api.services import services
from jobyard.backends.base import Handle
from jobyard.backends.storage import StorageError
from jobyard.backends.storage.tarstream import Member, tar_gz
from jobyard.schemas.catalog import NoWorkload
from jobyard.schemas.checkpoints import (
    best_by_metric,
    best_model,
    latest_model,
)
from jobyard.schemas.common import StrictSchema
from jobyard.store.errors import NotFound

logger = logging.getLogger(__name__)
blp = Blueprint(
    "job_files",
    __name__,
    url_prefix="/api/v2/orgs/<string:org_name>",
    description="A job's files: list them, download all or some as tar.gz",
)

LOG_NAME = "logs_from_toolkit.txt"
SPECS_NAME = "experiment_specs.json"
ARCHIVE = {
    "200": {
        "description": "A tar.gz of the files under a folder named after the job",
        "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
    }
}


class ListFilesSchema(StrictSchema):
    retrieve_logs = fields.Boolean(load_default=False)
    retrieve_specs = fields.Boolean(load_default=False)


class SelectiveSchema(StrictSchema):
    best_model = fields.Boolean(load_default=False)
    latest_model = fields.Boolean(load_default=False)
    file_lists = fields.List(
        fields.String(validate=validate.Length(1, 2048)),
        load_default=list,
        validate=validate.Length(max=1000),
    )
    tar_files = fields.Boolean(load_default=True, metadata={"description": "always a tar.gz"})

    @ma.validates_schema
    def _something(self, data: dict[str, Any], **_: Any) -> None:
        if not (data["best_model"] or data["latest_model"] or data["file_lists"]):
            raise ma.ValidationError("ask for best_model, latest_model or file_lists")


# --- choosing files: pure --------------------------------------------------------------


def best_of(org: str, job: dict[str, Any], paths: Sequence[str]) -> str | None:
    """The job's best model: a file named so, else the epoch checkpoint whose epoch scored
    best on its catalog entry's metric (what TAO's own API picks for a toolkit container,
    which names no file "best")."""
    named = best_model(paths)
    if named is not None:
        return named
    store = services().store
    try:
        entry = store.catalog.for_job(job)
    except NoWorkload:
        return None
    if not entry.metric:
        return None
    events = store.events.list_for_job(org, job["_id"])
    return best_by_metric(paths, events, entry.metric, entry.metric_goal)


def selection(
    paths: Sequence[str], body: dict[str, Any], best: Callable[[Sequence[str]], str | None]
) -> list[str]:
    """The files a selective download asks for, or Missing saying what is absent."""
    chosen: list[str] = []
    for wanted, pick in (("best_model", best), ("latest_model", latest_model)):
        if body[wanted]:
            found = pick(paths)
            if found is None:
                raise Missing(f"the job's results hold no {wanted.replace('_', ' ')}")
            chosen.append(found)
    present = set(paths)
    asked = [p.strip("/") for p in body["file_lists"]]
    missing = [p for p in asked if p not in present]
    if missing:
        raise Missing(f"not among the job's files: {', '.join(missing[:10])}")
    return list(dict.fromkeys([*chosen, *asked]))


# --- where the files come from ---------------------------------------------------------


def _log_member(org: str, job: dict[str, Any], stack: contextlib.ExitStack) -> Member:
    """The stored log, spooled to a temporary file (memory up to 1 MiB) so that its
    size is known for the tar header without holding a large log in memory."""
    spool = stack.enter_context(tempfile.SpooledTemporaryFile(max_size=1024 * 1024))
    offset = 0
    while True:
        data, offset = services().store.logs.read(org, job["_id"], offset, 1024 * 1024)
        if not data:
            break
        spool.write(data)
    size = spool.tell()

    @contextlib.contextmanager
    def opened() -> Iterator[IO[bytes]]:
        spool.seek(0)
        yield spool

    return Member(LOG_NAME, size, float(job.get("last_modified", 0)), opened)


def _specs_member(job: dict[str, Any]) -> Member:
    data = json.dumps(job.get("specs") or {}, indent=2, sort_keys=True).encode()
    return Member(SPECS_NAME, len(data), float(job.get("created_on", 0)), lambda: io.BytesIO(data))


def _workspace_copy(org: str, job: dict[str, Any]) -> list[Member] | None:
    """The finished job's results as uploaded to its workspace (workers/transfers.py),
    which outlive the backend; None when there is no complete copy to read."""
    artifacts = job.get("artifacts") or {}
    if not artifacts.get("complete"):
        return None
    try:
        storage = workspace_storage(org, artifacts["workspace"])
        prefix = str(artifacts["prefix"]).strip("/") + "/"
        found = list(storage.list(prefix))
    except (StorageError, NotFound) as e:
        logger.warning("job %s: workspace copy unreadable, using the backend: %s", job["_id"], e)
        return None
    return [
        Member(item.key[len(prefix) :], item.size, item.modified, partial(storage.open, item.key))
        for item in found
    ]


def result_members(org: str, job: dict[str, Any], stack: contextlib.ExitStack) -> list[Member]:
    copy = _workspace_copy(org, job)
    if copy is not None:
        return copy
    if not job.get("handle"):
        return []  # never submitted: nothing ran, nothing written
    backend = stack.enter_context(services().resources.open_backend(job["backend"]))
    handle = Handle.from_doc(job["handle"])
    return [
        Member(item.path, item.size, item.modified, partial(backend.open_result, handle, item.path))
        for item in backend.list_results(handle)
    ]


def result_names(org: str, job: dict[str, Any]) -> list[str]:
    """Paths of the job's result files, relative to its results directory."""
    with contextlib.ExitStack() as stack:
        return [m.name for m in result_members(org, job, stack)]


def _extras(results: list[Member], logs: bool, specs: bool) -> list[str]:
    """Names of the log and specs files asked for; a result of the same name wins."""
    taken = {m.name for m in results}
    wanted = [(logs, LOG_NAME), (specs, SPECS_NAME)]
    return [name for asked, name in wanted if asked and name not in taken]


def _members(
    org: str,
    job: dict[str, Any],
    stack: contextlib.ExitStack,
    only: Callable[[list[str]], list[str]] | None,
) -> list[Member]:
    """The archive's members: every file, or those ``only`` picks from the names."""
    results = result_members(org, job, stack)
    extras = _extras(results, logs=True, specs=True)
    names = [m.name for m in results] + extras
    wanted = only(names) if only is not None else names
    by_name = {m.name: m for m in results}
    members = []
    for name in wanted:
        if name in by_name:
            members.append(by_name[name])
        elif name == LOG_NAME:
            members.append(_log_member(org, job, stack))
        else:
            members.append(_specs_member(job))
    return members


def _archive(
    org: str, job_id: str, only: Callable[[list[str]], list[str]] | None = None
) -> Response:
    """Stream a tar.gz of the job's files (``only``: a function choosing paths)."""
    job = services().store.jobs.get(org, job_id)
    stack = contextlib.ExitStack()
    try:
        members = _members(org, job, stack, only)
    except BaseException:
        stack.close()
        raise
    prefixed = [Member(f"{job_id}/{m.name}", m.size, m.modified, m.open) for m in members]

    def chunks() -> Iterator[bytes]:
        with stack:
            try:
                yield from tar_gz(prefixed)
            except Exception:  # headers are sent: all we can do is end the stream early
                logger.exception("job %s: download interrupted", job_id)

    response = Response(
        stream_with_context(chunks()), mimetype="application/gzip", direct_passthrough=True
    )
    response.headers["Content-Disposition"] = f'attachment; filename="{job_id}.tar.gz"'
    return response


# --- routes ----------------------------------------------------------------------------


@blp.route("/jobs/<id:job_id>:list_files")
class JobListFiles(MethodView):
    @blp.arguments(ListFilesSchema, required=False)
    @blp.response(200)
    def post(self, body: dict[str, Any] | None, org_name: str, job_id: str) -> list[str]:
        """Paths of the job's files (results; with logs and specs when asked)"""
        body = body or {"retrieve_logs": False, "retrieve_specs": False}
        job = services().store.jobs.get(org_name, job_id)
        with contextlib.ExitStack() as stack:
            results = result_members(org_name, job, stack)
        extras = _extras(results, body["retrieve_logs"], body["retrieve_specs"])
        return [m.name for m in results] + extras


@blp.route("/jobs/<id:job_id>:download")
class JobDownload(MethodView):
    @blp.doc(responses=ARCHIVE)
    def get(self, org_name: str, job_id: str) -> Response:
        """Everything the job produced, with its log and specs, as a tar.gz stream"""
        return _archive(org_name, job_id)


@blp.route("/jobs/<id:job_id>:download_selective_files")
class JobDownloadSelective(MethodView):
    @blp.arguments(SelectiveSchema)
    @blp.doc(responses=ARCHIVE)
    def post(self, body: dict[str, Any], org_name: str, job_id: str) -> Response:
        """Some of the job's files as a tar.gz: best_model, latest_model, file_lists"""
        job = services().store.jobs.get(org_name, job_id)

        def best(paths: Sequence[str]) -> str | None:
            return best_of(org_name, job, paths)

        return _archive(org_name, job_id, only=lambda paths: selection(paths, body, best))


@blp.route("/jobs/<id:job_id>:file_transfers")
class JobFileTransfers(MethodView):
    @blp.response(200)
    def get(self, org_name: str, job_id: str) -> dict[str, Any]:
        """Progress of copying the job's results to its workspace, and the copy's state

        ``transfer``: current file, bytes, files done/total, percent, rate, ETA and
        the seed's text lines; ``artifacts``: where the complete copy is, once made.
        """
        job = services().store.jobs.get(org_name, job_id)
        details = job.get("job_details") or {}
        return {"transfer": details.get("transfer"), "artifacts": job.get("artifacts")}
