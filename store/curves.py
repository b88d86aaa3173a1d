"""Metric curves, one document per (job, metric, variant), grown at ingest.

Reading a 1,000-epoch job's curves from its events means fetching thousands of event
documents; reading them from here is one small query for a few documents of number
arrays. Each document remembers the last event it took (``last``: run and seq as one
number), so re-reading the same status bytes after a crash appends nothing twice, and a
re-read that brings more events appends only the new ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from jobyard.schemas import metrics
from jobyard.store.guard import guarded

DUPLICATE_KEY = 11000
MAX_POINTS = 100_000  # kept per curve; the oldest go first


def event_key(run: int, seq: int) -> int:
    return run * 1_000_000_000 + seq


def curve_id(job_id: str, metric: str, variant: str) -> str:
    return f"{job_id}:{metrics.key(metric)}:{metrics.key(variant)}"


AXES = ("x", "y", "t", "run")  # a point is (key, x, y, t, run)
Point = tuple[int, float, float, Any, int]


def _points(
    batch: Sequence[tuple[str, str, int, Sequence[Mapping[str, Any]]]],
) -> dict[str, tuple[dict[str, Any], list[Point]]]:
    """curve id -> (its identifying fields, its points in this batch)."""
    grouped: dict[str, tuple[dict[str, Any], list[Point]]] = {}
    for job_id, org, run, events in batch:
        for event in metrics.scalars(events):
            metric = str(event["metric"])
            variant = str(event.get("variant") or metric)
            meta = {"job_id": job_id, "org": org, "metric": metric, "variant": variant}
            _, points = grouped.setdefault(curve_id(job_id, metric, variant), (meta, []))
            seq = int(event.get("seq", 0))
            iteration = event.get("iteration")
            x: float = seq  # an integer iteration stays one on the wire
            if isinstance(iteration, int | float) and not isinstance(iteration, bool):
                x = iteration
            points.append((event_key(run, seq), x, float(event["value"]), event.get("ts"), run))
    return grouped


@guarded
class Curves:
    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self._coll = db["job_curves"]

    def append_many(
        self, batch: Sequence[tuple[str, str, int, Sequence[Mapping[str, Any]]]]
    ) -> int:
        """Add the scalar events of many (job, org, run) to their curves: one read of
        where each curve is, one bulk write. Returns the points added."""
        grouped = _points(batch)
        if not grouped:
            return 0
        found = self._coll.find({"_id": {"$in": list(grouped)}}, {"last": 1})
        known = {d["_id"]: d.get("last", -1) for d in found}
        updates, inserts, added = [], [], 0
        for cid, (meta, points) in grouped.items():
            last = known.get(cid)
            fresh = sorted(p for p in points if last is None or p[0] > last)
            if not fresh:
                continue
            added += len(fresh)
            arrays = {axis: [p[i] for p in fresh] for i, axis in enumerate(AXES, start=1)}
            if last is None:
                inserts.append({"_id": cid, **meta, "last": fresh[-1][0], **arrays})
                continue
            push = {a: {"$each": values, "$slice": -MAX_POINTS} for a, values in arrays.items()}
            change = {"$push": push, "$set": {"last": fresh[-1][0]}}
            updates.append(UpdateOne({"_id": cid, "last": last}, change))
        if updates:
            self._coll.bulk_write(updates, ordered=False)
        if inserts:
            self._insert(inserts)
        return added

    def _insert(self, docs: list[dict[str, Any]]) -> None:
        """New curves; one another writer created meanwhile is already there."""
        try:
            self._coll.insert_many(docs, ordered=False)
        except BulkWriteError as e:
            errors = e.details.get("writeErrors", [])
            if any(err.get("code") != DUPLICATE_KEY for err in errors):
                raise

    def for_jobs(
        self, org: str, job_ids: Sequence[str], times: bool = False
    ) -> list[dict[str, Any]]:
        """The jobs' curves; the times of their points (the bulk of them) when asked."""
        query = {"org": org, "job_id": {"$in": list(job_ids)}}
        fields = {"last": 0, "org": 0, **({} if times else {"t": 0})}
        return list(self._coll.find(query, fields).sort("_id", 1))

    def delete_job(self, job_id: str) -> None:
        self._coll.delete_many({"job_id": job_id})
