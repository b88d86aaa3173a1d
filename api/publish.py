"""Publishing a Done job's model into the org's registry, and removing it again.

The files are streamed from wherever the job's results are read (the workspace copy, else
the backend: ``api.job_files``) to ``models/<org>/<name>/<version>/`` in the workspace's
storage, hashed on the way, never held in memory. The order of the writes is what makes
a crash harmless (``store.models``): reserve the version, copy, then make it visible.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import posixpath
from collections.abc import Mapping
from typing import IO, Any

from jobyard.api import checkpoints
from jobyard.api.datasets import workspace_storage
from jobyard.api.errors import BadRequest, Missing, Refused
from jobyard.api.job_files import result_members
from jobyard.api.services import services
from jobyard.backends.storage import Storage
from jobyard.backends.storage.tarstream import Member
from jobyard.schemas import models
from jobyard.schemas.catalog import BaseExperiment, NoWorkload, load_entry
from jobyard.schemas.checkpoints import model_files
from jobyard.schemas.job import JobState
from jobyard.store.catalog import entry_of
from jobyard.store.models import PUBLISHING, VersionTaken
from jobyard.store.timeutil import utcnow

logger = logging.getLogger(__name__)
VERSION_ATTEMPTS = 20  # concurrent publishes of one name each take the next free version


class _Hashing(io.RawIOBase):
    """A reader that hashes what passes through it, for an upload that checksums itself."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._source.read(size)
        self.digest.update(chunk)
        self.size += len(chunk)
        return chunk

    def readinto(self, buffer: Any) -> int:
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def publish(org: str, job_id: str, body: Mapping[str, Any], user_id: str) -> dict[str, Any]:
    svc = services()
    job = svc.store.jobs.get(org, job_id)
    _check_publishable(job)
    workspace_id = body.get("workspace") or job.get("workspace")
    if not workspace_id:
        message = (
            f"job {job_id} has no workspace; give one in the body (workspace) to hold the "
            "published files"
        )
        raise BadRequest(message, {"workspace": [message]})
    storage = workspace_storage(org, str(workspace_id))
    with contextlib.ExitStack() as stack:
        members = {m.name: m for m in result_members(org, job, stack)}
        checkpoint = _checkpoint(org, job, body, list(members))
        existing = svc.store.models.of_checkpoint(org, job_id, checkpoint)
        resuming = existing is not None and (existing.get("model") or {}).get("state") == PUBLISHING
        if existing is not None and not resuming and not body.get("force_create"):
            model = existing["model"]
            raise Refused(
                f"checkpoint {checkpoint} of job {job_id} is published as {model['name']} "
                f'version {model["version"]} ({existing["_id"]}); send "force_create": true '
                "to publish another version",
                {"existing_id": existing["_id"], "version": model["version"]},
            )
        if resuming and existing is not None:
            doc = existing  # a publish that crashed midway: its version, its folder
        else:
            doc = _reserve(org, job, body, checkpoint, str(workspace_id), user_id)
        model = dict(doc["model"])
        try:
            model.update(_copy(storage, model, members[checkpoint], _specs(job)))
        except BaseException:
            _discard(storage, doc)
            raise
    done = svc.store.models.complete(doc["_id"], model)
    logger.info("job %s: published %s version %s", job_id, model["name"], model["version"])
    return {
        **models.view(done),
        "message": f"published {model['name']} version {model['version']} ({done['_id']})",
    }


def _check_publishable(job: Mapping[str, Any]) -> None:
    if job.get("kind") != "experiment" or job.get("action") not in models.PUBLISHABLE:
        raise BadRequest(
            f"job {job['_id']} is a {job.get('kind')} {job.get('action')} job; only "
            f"{', '.join(models.PUBLISHABLE)} jobs (and AutoML searches) make a model to publish"
        )
    if job.get("status") != JobState.DONE.value:
        raise Refused(f"job {job['_id']} is {job.get('status')}; only a Done job can be published")


def _checkpoint(org: str, job: Mapping[str, Any], body: Mapping[str, Any], names: list[str]) -> str:
    """The file to publish, chosen as a derived job chooses its parent's; an export job's
    one exported model file when it names none best or latest."""
    fields = {
        "checkpoint_choose_method": body.get("checkpoint_choose_method") or "best_model",
        "checkpoint_epoch_number": body.get("checkpoint_epoch_number"),
        "parent_job_id": job["_id"],
    }
    try:
        return checkpoints.choose(org, dict(job), fields)
    except BadRequest as e:
        found = model_files(names)
        if job.get("action") == "export" and len(found) == 1:
            return found[0]
        message = e.message.replace("parent job", "job", 1)
        if not found:
            message += " (it has no model file to publish)"
        raise BadRequest(message, {"checkpoint_choose_method": [message]}) from e


def _specs(job: Mapping[str, Any]) -> dict[str, Any]:
    """The specs that made the model: an AutoML search's are its best trial's."""
    best = ((job.get("job_details") or {}).get("automl") or {}).get("best") or {}
    if job.get("automl_plan") and best.get("job_id"):
        trial = services().store.jobs.find(str(best["job_id"]))
        if trial is not None:
            return dict(trial.get("specs") or {})
    return dict(job.get("specs") or {})


def _source_entry(job: Mapping[str, Any]) -> BaseExperiment:
    try:
        return services().store.catalog.for_job(job)
    except NoWorkload as e:
        raise Refused(
            f"the catalog entry job {job['_id']} ran is gone ({e}), so a published model "
            "could not say how to train from it"
        ) from e


def _reserve(
    org: str,
    job: Mapping[str, Any],
    body: Mapping[str, Any],
    checkpoint: str,
    workspace_id: str,
    user_id: str,
) -> dict[str, Any]:
    svc = services()
    source = _source_entry(job)
    display = body.get("display_name") or job.get("name") or f"{source.network_arch} model"
    name = models.slug(str(display))
    specs = _specs(job) if job.get("action") in ("train", "retrain") else None
    for _ in range(VERSION_ATTEMPTS):
        version = svc.store.models.next_version(org, name)
        data = models.entry_data(
            source.data,
            org=org,
            name=name,
            version=version,
            display_name=str(display),
            description=str(body.get("description") or ""),
            specs=specs,
        )
        entry = load_entry(data, org)
        location = models.location(org, name, version)
        model = {
            "name": name,
            "display_name": str(display),
            "version": version,
            "description": str(body.get("description") or ""),
            "team": str(body.get("team") or ""),
            "source_job_id": job["_id"],
            "source_action": job.get("action"),
            "checkpoint": checkpoint,
            "metrics": models.metrics(job),
            "workspace": workspace_id,
            "location": location,
            "created_by": user_id,
        }
        pretrained = {
            "workspace": workspace_id,
            "location": location,
            "checkpoint": posixpath.basename(checkpoint),
        }
        try:
            return svc.store.models.reserve(entry, model, pretrained)
        except VersionTaken:
            continue
    raise Refused(f"could not take a version of {name}: {VERSION_ATTEMPTS} publishes raced it")


def _copy(
    storage: Storage, model: Mapping[str, Any], checkpoint: Member, specs: Mapping[str, Any]
) -> dict[str, Any]:
    """Upload the checkpoint (hashed as it streams), the specs and the model card."""
    location = str(model["location"])
    files = []
    name = posixpath.basename(checkpoint.name)
    with checkpoint.open() as source:
        reader = _Hashing(source)
        storage.upload(posixpath.join(location, name), reader, checkpoint.size)  # type: ignore[arg-type]
    files.append({"name": name, "size": reader.size, "sha256": reader.digest.hexdigest()})
    recorded = {"size": reader.size, "sha256": files[0]["sha256"], "published_on": utcnow()}
    for file_name, content in (
        (models.SPECS_FILE, specs),
        (models.CARD_FILE, {**model, **recorded, "files": files}),
    ):
        data = json.dumps(content, indent=2, sort_keys=True, default=str).encode()
        storage.upload(posixpath.join(location, file_name), io.BytesIO(data), len(data))
        files.append(
            {"name": file_name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        )
    return {**recorded, "files": files}


def _discard(storage: Storage, doc: Mapping[str, Any]) -> None:
    """A publish that failed cleanly leaves nothing: no files, no reserved version."""
    try:
        delete_files(storage, str(doc["model"]["location"]))
        services().store.models.delete(str(doc["_id"]))
    except Exception:  # the original error matters more; a later remove finishes this
        logger.exception("model %s: cleanup after a failed publish", doc["_id"])


def delete_files(storage: Storage, location: str) -> int:
    removed = 0
    for item in list(storage.list(location.rstrip("/") + "/")):
        storage.delete(item.key)
        removed += 1
    return removed


def remove(org: str, job_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Remove the versions published from a job (one ``version``, or every one; with
    ``team``, only that team's), files first, each refused while a job runs from it."""
    svc = services()
    svc.store.jobs.get(org, job_id)  # a 404 for a job the org does not have
    docs = svc.store.models.of_job(org, job_id)
    if body.get("team"):
        docs = [d for d in docs if d.get("team") == body["team"]]
    if body.get("version"):
        docs = [d for d in docs if d.get("model_version") == body["version"]]
    if not docs:
        which = "".join(
            [
                f" for team {body['team']}" if body.get("team") else "",
                f" of version {body['version']}" if body.get("version") else "",
            ]
        )
        raise Missing(f"job {job_id} has no published model{which}")
    removed = []
    for doc in sorted(docs, key=lambda d: int(d.get("model_version") or 0)):
        entry = entry_of(doc)
        svc.store.models.begin_removal(doc, entry)
        # a storage error from here leaves it "removing": hidden, and a second remove
        # finishes it
        pretrained = doc.get("pretrained") or {}
        storage = workspace_storage(org, str(pretrained["workspace"]))
        delete_files(storage, str(pretrained["location"]))
        svc.store.models.delete(str(doc["_id"]))
        removed.append(models.view(doc))
    names = ", ".join(f"{m['name']} version {m['version']}" for m in removed)
    return {"message": f"removed {names}", "removed": removed}
