"""AutoML trials: each trial of a search is a job of its own in ``jobs`` (so dispatch,
reconcile, pause, resume, timeouts and node-failure resubmission treat it as any run),
tied to its search by ``automl_of`` and numbered from 0 by ``automl_experiment_number``.

A trial's id follows from its search's id and its number, so creating it twice (a worker
killed between the decision and the insert, then the decision taken again) finds the
first. A trial is *open* until the search has recorded its outcome: each tick reads only
open trials, however long the search's history.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from pymongo import DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from jobyard.store.guard import guarded
from jobyard.store.jobdoc import new_job

Doc = dict[str, Any]
JOURNAL = "automl_journal"  # store.study_journal's, named here so deleting needs no optuna
_NAMESPACE = uuid.UUID("0f6d1c8e-5a0b-4d47-9a3e-6c1d2b7e9f10")
# what a trial does not inherit from its search
_SEARCH_ONLY = frozenset({"automl_settings", "automl_plan", "automl_rows", "fingerprint"})
SEARCH_FIELDS = ("org", "user_id", "backend")


def trial_id(search_id: str, number: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{search_id}:{number}"))


@guarded
class Trials:
    def __init__(self, db: Database[Doc]) -> None:
        self._coll = db["jobs"]
        self._journal = db[JOURNAL]

    def create(
        self,
        search: Mapping[str, Any],
        number: int,
        params: Mapping[str, Any],
        specs: Doc,
        extra: Mapping[str, Any] | None = None,
    ) -> tuple[Doc, bool]:
        """The trial, and whether this call created it; ``extra``: fields of its own (the
        parent checkpoint a PBT trial continues from)."""
        inherited = {
            k: v
            for k, v in search.items()
            if k not in _SEARCH_ONLY and k not in SEARCH_FIELDS and not _engine_field(k)
        }
        fields = {
            **inherited,
            "name": f"{search.get('name') or 'automl'} trial {number}",
            "specs": specs,
            "automl_of": search["_id"],
            "automl_experiment_number": number,
            "automl_params": dict(params),
            "automl_open": True,
            **(extra or {}),
        }
        doc: Doc = dict(
            new_job(
                str(search["org"]),
                str(search["user_id"]),
                fields,
                str(search["backend"]),
                f"automl:{search['_id']}:{number}",
            )
        )
        doc["_id"] = trial_id(str(search["_id"]), number)
        try:
            self._coll.insert_one(doc)
        except DuplicateKeyError:
            found = self._coll.find_one({"_id": doc["_id"]})
            assert found is not None
            return found, False
        return doc, True

    def open(self, search_ids: list[str]) -> list[Doc]:
        """The open trials of these searches, lowest number first."""
        query = {"automl_of": {"$in": search_ids}, "automl_open": {"$eq": True}}
        found = self._coll.find(query, {"specs": 0})
        return sorted(found, key=lambda d: (d["automl_of"], d["automl_experiment_number"]))

    def count(self, search_id: str) -> int:
        """Trials created: numbers are consecutive from 0, so the highest answers."""
        last = self._coll.find_one(
            {"automl_of": search_id},
            {"automl_experiment_number": 1},
            sort=[("automl_experiment_number", DESCENDING)],
        )
        return 0 if last is None else int(last["automl_experiment_number"]) + 1

    def created(self, search_id: str, asked: int) -> int:
        """Trials created, given how many the study has: each has its job but perhaps the
        last (a decision killed between asking and creating), which one lookup by id tells,
        at the same cost however many trials the search had."""
        if (
            asked
            and self._coll.find_one({"_id": trial_id(search_id, asked - 1)}, {"_id": 1}) is None
        ):
            return asked - 1
        return asked

    def mark_pruned(self, trial: str, epoch: int) -> bool:
        """The pruner gave up on the trial at ``epoch``: once, before it is stopped."""
        result = self._coll.update_one(
            {"_id": trial, "automl_pruned_at": None}, {"$set": {"automl_pruned_at": epoch}}
        )
        return result.modified_count == 1

    def close(self, trial: str, outcome: str) -> None:
        """The search has recorded the trial's outcome (finished, pruned, failed ...)."""
        self._coll.update_one(
            {"_id": trial}, {"$set": {"automl_open": False, "automl_outcome": outcome}}
        )

    def of(self, search_id: str, numbers: list[int] | None = None) -> list[Doc]:
        """The search's trials (those numbered, when given), in number order."""
        query: Doc = {"automl_of": search_id}
        if numbers is not None:
            query["automl_experiment_number"] = {"$in": numbers}
        found = self._coll.find(query, {"specs": 0, "series": 0})
        return sorted(found, key=lambda d: int(d["automl_experiment_number"]))

    def delete(self, search_id: str) -> int:
        """The search's trials and its study's journal (``store.study_journal``)."""
        self._journal.delete_many({"study": search_id})
        return int(self._coll.delete_many({"automl_of": search_id}).deleted_count)


def _engine_field(name: str) -> bool:
    """Fields the engine keeps per job that ``new_job`` does not set afresh: a trial
    starts with none of its search's."""
    return name in {
        "_id",
        "stop",
        "requested",
        "node_failures",
        "started_on",
        "finished_on",
        "artifacts",
        "last_metrics",
        "results",
        "admitted_at",
        "staged_run",
        "events_stored",
        "output_dataset_id",
    }
