"""Jobs: one document per job, changed only by compare-and-set.

The document is the source of truth for a job; Redis only carries "look at
job X" messages. Fields the engine owns (``handle``, ``offsets``, ``claim``)
are never shown to clients; ``public()`` is the wire view.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from jobyard.schemas.events import SERIES_LIMIT, Summary, graphical
from jobyard.schemas.job import ACTIVE_STATES, SERVE_ACTION, JobState, Request, sources
from jobyard.store.cas import compare_and_set
from jobyard.store.crypto import Cipher
from jobyard.store.errors import Conflict, Duplicate, NotFound
from jobyard.store.guard import guarded
from jobyard.store.jobdoc import new_job, next_run, state
from jobyard.store.paging import Page, count, fetch_page
from jobyard.store.timeutil import utcnow

Doc = dict[str, Any]
INTERNAL = frozenset(
    {
        "_id",
        "org",
        "handle",
        "submitted",
        "fingerprint",
        "offsets",
        "claim_until",
        "enqueued_at",
        "series",
        "log_bytes",
        "stop",
        "requested",
        "backend",
        "dispatch_attempts",
        "staged_run",
        "runs",
        "encryption_key",
        "secrets_enc",
        "status_protocol",
        "catalog_id",
        "dataset_output",
        "events_stored",
        "results",
        "node_failures",
        "priority_rank",
        "admitted_at",
        "automl_plan",
        "automl_rows",
        "automl_open",
    }
)
ACTIVE = [s.value for s in ACTIVE_STATES]
WAITING = [JobState.PENDING.value, JobState.RESUMING.value]  # states a dispatch may submit
# ``$eq`` spelled out: the same match as ``{"active": True}`` on MongoDB, and the form
# nx-27017 serves from the index (a bare boolean makes it scan the collection)
ACTIVE_ONLY = {"active": {"$eq": True}}
# What ``workers.enqueue.dispatch`` needs of a job to place it in its org's line.
DISPATCHED_FIELDS = {"_id": 1, "org": 1, "backend": 1, "priority_rank": 1, "created_on": 1}


def public(doc: Mapping[str, Any]) -> Doc:
    out = {k: v for k, v in doc.items() if k not in INTERNAL}
    out["id"] = doc["_id"]
    details = dict(doc.get("job_details") or {})
    details["graphical"] = graphical(doc.get("series") or {})
    if "automl_rows" in doc and isinstance(details.get("automl"), Mapping):
        rows = doc["automl_rows"].values()
        experiments = sorted(rows, key=lambda r: int(r["experiment_number"]))
        details["automl"] = {**details["automl"], "experiments": experiments}
    out["job_details"] = details
    return out


def job_secrets(cipher: Cipher, doc: Mapping[str, Any]) -> dict[str, Any]:
    """The job's secrets, decrypted (only the engine asks, to start a run): its
    ``encryption_key`` and the values of its ``docker_env_vars``."""
    found = cipher.decrypt(doc["secrets_enc"]) if doc.get("secrets_enc") else {}
    legacy = doc.get("encryption_key")  # jobs created before secrets_enc held only the key
    if legacy and "encryption_key" not in found:
        found["encryption_key"] = cipher.decrypt(legacy).get("key")
    return found


@guarded
class Jobs:
    def __init__(self, db: Database[Doc]) -> None:
        self._coll = db["jobs"]

    # --- client-facing ----------------------------------------------------------------

    def create(
        self, org: str, user_id: str, fields: Mapping[str, Any], backend: str, fingerprint: str
    ) -> Doc:
        """Insert a Pending job; ``Duplicate`` if one with the same fingerprint exists."""
        doc: Doc = dict(new_job(org, user_id, fields, backend, fingerprint))
        try:
            self._coll.insert_one(doc)
        except DuplicateKeyError:
            existing = self._coll.find_one({"org": org, "fingerprint": fingerprint}, {"_id": 1})
            raise Duplicate("job", existing["_id"] if existing else "?") from None
        return doc

    def get(self, org: str, job_id: str) -> Doc:
        doc = self._coll.find_one({"_id": job_id, "org": org})
        if doc is None:
            raise NotFound("job", job_id)
        return doc

    def list_page(self, org: str, page: Page) -> tuple[list[Doc], dict[str, int]]:
        return fetch_page(self._coll, {"org": org}, page)

    def count(self, org: str, page: Page) -> int:
        return count(self._coll, page.query({"org": org}))

    def delete(self, org: str, job_id: str) -> Doc:
        """Refused while the job runs, and while a model server serves its model."""
        serving = [
            d["_id"]
            for d in self._coll.find(
                {"org": org, "parent_job_id": job_id, "action": SERVE_ACTION, **ACTIVE_ONLY},
                {"_id": 1},
            ).limit(5)
        ]
        if serving:
            raise Conflict(
                f"job {job_id} is the model of running inference microservices "
                f"({', '.join(serving)}); stop them before deleting it"
            )
        doc = self._coll.find_one_and_delete(
            {"_id": job_id, "org": org, "status": {"$nin": ACTIVE}}
        )
        if doc is not None:
            return doc
        current = self.get(org, job_id)  # raises NotFound
        raise Conflict(f"job {job_id} is {current['status']}; cancel it before deleting it")

    def request_cancel(self, org: str, job_id: str) -> Doc:
        now = utcnow()
        try:
            return compare_and_set(
                self._coll,
                "job",
                {"_id": job_id, "org": org},
                "status",
                [JobState.PAUSED.value],
                {
                    "$set": {
                        **state(JobState.CANCELED),
                        "finished_on": now,
                        "last_modified": now,
                        "job_details.detailed_status.message": "canceled while paused",
                    }
                },
            )
        except Conflict:
            pass
        return compare_and_set(
            self._coll,
            "job",
            {"_id": job_id, "org": org},
            "status",
            sources(JobState.CANCELING),
            {
                "$set": {
                    **state(JobState.CANCELING),
                    "requested": Request.CANCEL.value,
                    "last_modified": now,
                }
            },
        )

    def request_pause(self, org: str, job_id: str, graceful: bool) -> Doc:
        return compare_and_set(
            self._coll,
            "job",
            {"_id": job_id, "org": org},
            "status",
            sources(JobState.PAUSING),
            {
                "$set": {
                    **state(JobState.PAUSING),
                    "last_modified": utcnow(),
                    "requested": (Request.PAUSE if graceful else Request.PAUSE_NOW).value,
                }
            },
        )

    def resume(self, org: str, job_id: str, changes: Mapping[str, Any]) -> Doc:
        """A new run of the same job, from its checkpoint: fresh offsets and handle,
        events and logs of earlier runs kept (they are keyed by run)."""
        job = self.get(org, job_id)
        return compare_and_set(
            self._coll,
            "job",
            {"_id": job_id, "org": org, "run": job["run"]},
            "status",
            [JobState.PAUSED.value],
            {"$set": {**changes, **next_run(job["run"], "resuming from the checkpoint")}},
        )

    def statuses(self, job_ids: list[str]) -> dict[str, str]:
        found = self._coll.find({"_id": {"$in": job_ids}}, {"status": 1})
        return {d["_id"]: d["status"] for d in found}

    def set_transfer(self, job_id: str, snapshot: Mapping[str, Any]) -> None:
        """Progress of the job's latest copy of results (``job_details.transfer``)."""
        self._coll.update_one({"_id": job_id}, {"$set": {"job_details.transfer": snapshot}})

    def set_artifacts(self, job_id: str, artifacts: Mapping[str, Any]) -> None:
        self._coll.update_one({"_id": job_id}, {"$set": {"artifacts": artifacts}})

    def note_all(self, job_ids: list[str], message: str) -> None:
        """Show ``message`` on every listed job without touching its state."""
        note = {"$set": {"job_details.detailed_status.message": message}}
        self._coll.update_many({"_id": {"$in": job_ids}}, note)

    def resubmit(
        self, job_id: str, status: str, run: int, message: str, counter: str = "node_failures"
    ) -> bool:
        """Engine-side resume after the node under run ``run`` failed (or a model server
        died: ``counter`` is then ``serving.restarts``); False if the job moved on
        meanwhile (canceled, paused, already resubmitted)."""
        changes = next_run(run, message)
        if counter != "node_failures":
            changes.update({"serving.ready_since": None, "serving.url": None})
        result = self._coll.update_one(
            {"_id": job_id, "status": status, "run": run},
            {"$set": changes, "$inc": {counter: 1}},
        )
        return result.modified_count == 1

    def select_ids(self, org: str, selector: Mapping[str, Any]) -> list[str]:
        """Ids named by a bulk request: listed ids as given, or every job of a
        workspace, or the job and every job derived from it."""
        if "job_ids" in selector:
            return list(selector["job_ids"])
        if "workspace" in selector:
            query: Doc = {"org": org, "workspace": selector["workspace"]}
        else:
            parent = selector["parent_job_id"]
            query = {"org": org, "$or": [{"_id": parent}, {"parent_job_id": parent}]}
        return [d["_id"] for d in self._coll.find(query, {"_id": 1}).sort("created_on", 1)]

    # --- engine-facing ------------------------------------------------------------------

    def find(self, job_id: str) -> Doc | None:
        return self._coll.find_one({"_id": job_id})

    def claim_dispatch(self, job_id: str, lease_seconds: float) -> Doc | None:
        """Take the right to submit the current run; None if another worker has it."""
        now = utcnow()
        return self._coll.find_one_and_update(
            {
                "_id": job_id,
                "status": {"$in": WAITING},
                "submitted": False,
                "claim_until": {"$lt": now},
            },
            {"$set": {"claim_until": now + lease_seconds}, "$inc": {"dispatch_attempts": 1}},
            return_document=ReturnDocument.AFTER,
        )

    def release_claim(self, job_id: str) -> None:
        self._coll.update_one({"_id": job_id}, {"$set": {"claim_until": 0.0}})

    def defer(self, job_id: str, message: str) -> None:
        """Give the claim back without spending a dispatch attempt (the job waits for its
        org's quota, not on a failure), showing why."""
        self._coll.update_one(
            {"_id": job_id},
            {
                "$set": {"claim_until": 0.0, "job_details.detailed_status.message": message},
                "$inc": {"dispatch_attempts": -1},
            },
        )

    def renew_claim(self, job_id: str, run: int, lease_seconds: float) -> bool:
        """Keep the right to submit run ``run`` (while its datasets are copied); False once
        the job moved on (canceled, or the run was submitted) or the claim was given back
        (a keeper's renewal racing the release must not take the claim again)."""
        result = self._coll.update_one(
            {
                "_id": job_id,
                "run": run,
                "submitted": False,
                "status": {"$in": WAITING},
                "claim_until": {"$gt": 0.0},
            },
            {"$set": {"claim_until": utcnow() + lease_seconds}},
        )
        return result.matched_count == 1

    def mark_staged(self, job_id: str, run: int) -> bool:
        """Run ``run``'s datasets are in place: the next dispatch submits it at once."""
        result = self._coll.update_one(
            {"_id": job_id, "run": run, "submitted": False},
            {"$set": {"staged_run": run, "claim_until": 0.0}},
        )
        return result.modified_count == 1

    def set_handle(
        self,
        job_id: str,
        run: int,
        handle: Doc,
        message: str,
        running_since: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> bool:
        """Record the submitted run whatever the job's state: a cancel that raced the
        submit must still find the run to stop. With ``running_since`` (the backend saw it
        running at once) the job moves to Running in the same write, if it still waits.
        False if the run was recorded already."""
        submitted = {
            "handle": handle,
            "submitted": True,
            "claim_until": 0.0,
            "dispatch_attempts": 0,
            "last_modified": utcnow(),
            "job_details.detailed_status.message": message,
            **(extra or {}),
        }
        query: Doc = {"_id": job_id, "run": run, "submitted": False}
        if running_since is not None:
            running = {
                **submitted,
                **state(JobState.RUNNING),
                "started_on": running_since,
                "job_details.detailed_status.message": "running",
                "job_details.detailed_status.status": JobState.RUNNING.value,
            }
            waiting = {**query, "status": {"$in": sources(JobState.RUNNING)}}
            if self._coll.update_one(waiting, {"$set": running}).modified_count == 1:
                return True
        return self._coll.update_one(query, {"$set": submitted}).modified_count == 1

    def transition(
        self, job_id: str, target: JobState, changes: Mapping[str, Any] | None = None
    ) -> Doc:
        update: Doc = {"$set": {**state(target), "last_modified": utcnow(), **(changes or {})}}
        return compare_and_set(
            self._coll, "job", {"_id": job_id}, "status", sources(target), update
        )

    def update_fields(self, job_id: str, status: str, changes: Mapping[str, Any]) -> Doc | None:
        """Set fields only while the job is still in ``status``."""
        return self._coll.find_one_and_update(
            {"_id": job_id, "status": status},
            {"$set": {**changes, "last_modified": utcnow()}},
            return_document=ReturnDocument.AFTER,
        )

    def set_while(self, job_id: str, status: str, changes: Mapping[str, Any]) -> bool:
        """``update_fields`` without reading the document back (a search's is large)."""
        result = self._coll.update_one(
            {"_id": job_id, "status": status}, {"$set": {**changes, "last_modified": utcnow()}}
        )
        return result.matched_count == 1

    def watched(self, backend: str) -> list[Doc]:
        """Every job of this backend with a run that reconcile must look at, without the
        fields reconcile never reads (the specs, the metric series: the large ones)."""
        query = {**ACTIVE_ONLY, "backend": backend, "submitted": {"$eq": True}}
        found = self._coll.find(query, {"specs": 0, "series": 0, "automl_rows": 0})
        return [d for d in found if d.get("handle")]  # a search has no run: its trials do

    def starting_servers(self, backend: str, action: str) -> list[Doc]:
        """Model servers of this backend that run but have not answered their health
        check yet (``workers.serving``)."""
        query = {
            **ACTIVE_ONLY,
            "backend": backend,
            "action": action,
            "status": JobState.RUNNING.value,
            "serving.ready_since": None,
        }
        return list(self._coll.find(query, {"_id": 1, "run": 1, "serving": 1, "handle": 1}))

    def place_server(self, job_id: str, run: int, url: str, tunnel: bool) -> bool:
        """Where a server that picked its port where it runs listens (``workers.serving``),
        and whether the API reaches it through its backend (``Backend.reach``)."""
        result = self._coll.update_one(
            {"_id": job_id, "run": run, "serving.url": None},
            {"$set": {"serving.url": url, "serving.tunnel": tunnel, "last_modified": utcnow()}},
        )
        return result.modified_count == 1

    def mark_ready(self, job_id: str, run: int, message: str) -> bool:
        result = self._coll.update_one(
            {"_id": job_id, "run": run, "status": JobState.RUNNING.value},
            {
                "$set": {
                    "serving.ready_since": utcnow(),
                    "serving.last_error": None,
                    "job_details.detailed_status.message": message,
                    "last_modified": utcnow(),
                }
            },
        )
        return result.modified_count == 1

    def served(self, job_id: str, error: str | None = None) -> None:
        """One request forwarded to a model server (and what went wrong, if it did)."""
        changes: Doc = {"serving.last_request": utcnow()}
        if error is not None:
            changes["serving.last_error"] = error
        self._coll.update_one({"_id": job_id}, {"$set": changes, "$inc": {"serving.requests": 1}})

    def searches(self, backend: str) -> list[Doc]:
        """The AutoML searches of this backend under way (``workers.automl``)."""
        query = {
            **ACTIVE_ONLY,
            "backend": backend,
            "submitted": {"$eq": True},
            "automl_plan": {"$exists": True},
        }
        return list(self._coll.find(query, {"series": 0, "automl_rows": 0}))

    def start_search(self, job_id: str, run: int) -> bool:
        """A search's run is the controller's: no handle, Running at once."""
        now = utcnow()
        result = self._coll.update_one(
            {"_id": job_id, "run": run, "submitted": False, "status": {"$in": WAITING}},
            {
                "$set": {
                    **state(JobState.RUNNING),
                    "submitted": True,
                    "claim_until": 0.0,
                    "dispatch_attempts": 0,
                    "started_on": now,
                    "last_modified": now,
                    "job_details.detailed_status.message": "searching: starting trials",
                    "job_details.detailed_status.status": JobState.RUNNING.value,
                }
            },
        )
        return result.modified_count == 1

    def backends_to_watch(self) -> list[str]:
        """The backend targets with a run to reconcile: a ``distinct`` over the active jobs,
        an index walk on MongoDB and the cheapest form on nx-27017 (whose ``$group`` and
        projected finds copy every matched document)."""
        query = {**ACTIVE_ONLY, "submitted": {"$eq": True}}
        return sorted(str(b) for b in self._coll.distinct("backend", query))

    def unsubmitted(self, older_than: float) -> list[Doc]:
        """Jobs waiting for a dispatch that may have been lost with its message."""
        return list(
            self._coll.find(
                {
                    **ACTIVE_ONLY,
                    "submitted": {"$eq": False},
                    "enqueued_at": {"$lt": older_than},
                    "claim_until": {"$lt": utcnow()},
                },
                {**DISPATCHED_FIELDS, "status": 1, "enqueued_at": 1},
            )
        )

    def mark_enqueued(self, job_id: str, previous: float) -> bool:
        result = self._coll.update_one(
            {"_id": job_id, "enqueued_at": previous}, {"$set": {"enqueued_at": utcnow()}}
        )
        return result.modified_count == 1

    def advance_output(
        self,
        job: Mapping[str, Any],
        offsets: Mapping[str, int],
        log_bytes: int,
        summary: Summary,
        new_events: int,
    ) -> bool:
        """Move the read offsets forward and fold new events into job_details.

        Conditional on the offsets the caller read from: if another reconcile
        advanced them first, nothing is applied twice.
        """
        query, update = advance_update(job, offsets, log_bytes, summary, new_events)
        return self._coll.update_one(query, update).modified_count == 1

    def write_tick(self, writes: Sequence[TickWrite]) -> set[str]:
        """One reconcile tick's writes for many jobs in one bulk write: each job's output
        advance (conditional on the offsets read), its state change (a compare-and-set from
        the states its target may be reached from) and its message (only while the job is
        in the status it was read in), combined per job. Returns the ids whose state change
        landed; only when some write did not land does it cost a read to tell which."""
        ops: list[UpdateOne] = []
        now = utcnow()
        for w in writes:
            query: Doc = dict(w.advance[0]) if w.advance else {"_id": w.job_id}
            update: Doc = {k: dict(v) for k, v in w.advance[1].items()} if w.advance else {}
            sets = update.setdefault("$set", {})
            if w.target is not None:
                query["status"] = {"$in": sources(w.target)}
                merge_sets(sets, {**w.changes, **state(w.target)})
            elif w.changes:
                query["status"] = w.status
                merge_sets(sets, w.changes)
            sets["last_modified"] = now
            ops.append(UpdateOne(query, update))
        if not ops:
            return set()
        result = self._coll.bulk_write(ops, ordered=False)
        moving = {w.job_id: w.target.value for w in writes if w.target is not None}
        if result.matched_count == len(ops):
            return set(moving)
        found = self._coll.find({"_id": {"$in": list(moving)}}, {"status": 1})
        return {d["_id"] for d in found if d["status"] == moving[d["_id"]]}

    def backfill_active(self) -> int:
        """Documents written before ``active`` existed (or restored from such a backup)
        get it from their status; nothing to do once every document has it."""
        fixed = 0
        for active, states in (
            (True, ACTIVE),
            (False, [s.value for s in JobState if not s.active]),
        ):
            query = {"active": {"$exists": False}, "status": {"$in": states}}
            fixed += self._coll.update_many(query, {"$set": {"active": active}}).modified_count
        return fixed

    def reset_event_count(self, job_id: str, count: int) -> None:
        self._coll.update_one({"_id": job_id}, {"$set": {"events_stored": count}})


def merge_sets(sets: Doc, changes: Mapping[str, Any]) -> None:
    """Add ``changes`` to a ``$set``: a dotted key under a key already set (a state
    change's ``job_details.detailed_status.message`` after the advance's whole
    ``job_details.detailed_status``) goes into that value, as MongoDB refuses both paths in
    one update."""
    for key, value in changes.items():
        parent = next((p for p in sets if key.startswith(p + ".")), None)
        if parent is None:
            sets[key] = value
            continue
        target = sets[parent] = copy.deepcopy(sets[parent])
        *path, last = key[len(parent) + 1 :].split(".")
        for part in path:
            target = target.setdefault(part, {})
        target[last] = value


@dataclass(frozen=True)
class TickWrite:
    """What reconcile writes for one job in a tick (see ``Jobs.write_tick``)."""

    job_id: str
    status: str  # the status the job was read in
    advance: tuple[Doc, Doc] | None = None  # advance_update(...)
    target: JobState | None = None
    changes: Mapping[str, Any] = field(default_factory=dict)  # with target, or a message


def advance_update(
    job: Mapping[str, Any],
    offsets: Mapping[str, int],
    log_bytes: int,
    summary: Summary,
    new_events: int,
) -> tuple[Doc, Doc]:
    """The conditional update that moves a job's read offsets forward and folds new events
    into ``job_details``: matched only at the offsets the caller read from, so a second
    reconcile of the same bytes applies nothing twice."""
    old = job["offsets"]
    query = {
        "_id": job["_id"],
        "run": job["run"],
        "log_bytes": job["log_bytes"],
        **{f"offsets.{k}": v for k, v in old.items()},
    }
    changes: Doc = {f"offsets.{k}": v for k, v in offsets.items()}
    changes["log_bytes"] = log_bytes
    changes.update({f"job_details.{k}": v for k, v in summary.details.items()})
    for metric, variants in summary.last_metrics.items():
        changes.update({f"last_metrics.{metric}.{v}": stats for v, stats in variants.items()})
    update: Doc = {"$set": changes, "$inc": {"events_stored": new_events}}
    if summary.series:
        # x and y as two arrays of numbers: nested arrays do not survive every
        # MongoDB-wire server (nx-27017 stores them as strings); on MongoDB this is the
        # same data in the shape graphical() reads, so it stays
        push: Doc = {}
        for metric, points in summary.series.items():
            for axis, values in (("x", [p[0] for p in points]), ("y", [p[1] for p in points])):
                push[f"series.{metric}.{axis}"] = {"$each": values, "$slice": -SERIES_LIMIT}
        update["$push"] = push
    return query, update
