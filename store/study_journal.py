"""An Optuna journal backend in MongoDB: an AutoML search's study lives in jobyard's
database beside its job, so any worker can take the next decision and a worker killed
mid-decision loses nothing Optuna had written.

Optuna replays a study from its log of operations, read in order from a log number on.
Each log is one document whose ``_id`` is its number within the study: an append takes
the next number by inserting it, and a writer that loses the race to another retries with
the next. A number exists only once written, so the numbers a reader sees have no gaps and
replay never skips one. Logs are kept as JSON text: Optuna's keys are parameter names such
as ``train.learning_rate``, which a document's field names cannot be, and its floats must
read back exactly (nx-27017 rounds those of updated documents).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from optuna.storages.journal import BaseJournalBackend
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from jobyard.store.trials import JOURNAL

COLLECTION = JOURNAL
MAX_APPEND_ATTEMPTS = 1000  # each lost race means another writer's log landed


def _id(study: str, number: int) -> str:
    return f"{study}:{number:012d}"


class MongoJournalBackend(BaseJournalBackend):
    def __init__(self, db: Database[dict[str, Any]], study: str) -> None:
        self._coll = db[COLLECTION]
        self._study = study

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        # Optuna asks on every read of the study, and mostly nothing is new: one lookup of
        # the next number by _id says so at the same cost whatever the study's length (a
        # range query's cost grows with it on nx-27017). Numbers have no gaps, so no next
        # log means no later one.
        if self._coll.find_one({"_id": _id(self._study, log_number_from)}, {"_id": 1}) is None:
            return
        query = {"study": self._study, "n": {"$gte": log_number_from}}
        expected = log_number_from
        for doc in self._coll.find(query, {"n": 1, "log": 1}).sort("n", ASCENDING):
            if doc["n"] != expected:
                return  # not yet visible to this reader: read on from here next time
            expected += 1
            yield json.loads(doc["log"])

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        for log in logs:
            self._append(json.dumps(log))

    def _append(self, text: str) -> None:
        number = self._next_number()
        for _ in range(MAX_APPEND_ATTEMPTS):
            try:
                doc = {"_id": _id(self._study, number), "study": self._study, "n": number}
                self._coll.insert_one({**doc, "log": text})
                return
            except DuplicateKeyError:
                number = max(number + 1, self._next_number())
        raise RuntimeError(f"could not append to study {self._study}: too much contention")

    def _next_number(self) -> int:
        last = self._coll.find_one({"study": self._study}, {"n": 1}, sort=[("n", DESCENDING)])
        return 0 if last is None else int(last["n"]) + 1

    def delete(self) -> None:
        """The study's whole log (its job was deleted)."""
        self._coll.delete_many({"study": self._study})
