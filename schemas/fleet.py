"""Workers and queues as operators see them (seed 004's ``workers`` and ``queues``): pure
functions over what the workers report and what the tick samples."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from jobyard.schemas.common import StrictSchema


def worker_view(doc: Mapping[str, Any], now: float, lost_after: float) -> dict[str, Any]:
    """A worker's report, with ``state`` alive or lost (silent for longer than
    ``lost_after`` seconds) and how long ago it last reported."""
    age = now - float(doc.get("last_report_time") or 0)
    return {
        **{k: v for k, v in doc.items() if k != "_id"},
        "id": doc["_id"],
        "state": "alive" if age <= lost_after else "lost",
        "report_age_seconds": round(age, 3),
    }


def queue_metrics(
    samples: Iterable[Mapping[str, Any]], start: float, end: float, interval: float
) -> dict[str, list[Any]]:
    """Seed 004's ``queue_metrics``: one point per ``interval`` from ``start`` that has a
    sample, the largest average waiting time in it and the queue length of that sample."""
    buckets: dict[int, Mapping[str, Any]] = {}
    for sample in samples:
        at = float(sample["at"])
        if not start <= at < end:
            continue
        slot = int((at - start) // interval)
        best = buckets.get(slot)
        if best is None or float(sample["avg_wait"]) > float(best["avg_wait"]):
            buckets[slot] = sample
    slots = sorted(buckets)
    return {
        "dates": [int(start + slot * interval) for slot in slots],
        "queue_lengths": [int(buckets[slot]["length"]) for slot in slots],
        "avg_waiting_times": [float(buckets[slot]["avg_wait"]) for slot in slots],
    }


class QueueMetricArgsSchema(StrictSchema):
    from_ = fields.Float(
        data_key="from", validate=validate.Range(0, 2**40), metadata={"description": "epoch s"}
    )
    to = fields.Float(validate=validate.Range(0, 2**40), metadata={"description": "epoch s"})
    interval = fields.Float(
        load_default=60.0, validate=validate.Range(1, 86_400), metadata={"description": "s"}
    )


class QueueMetricsSchema(ma.Schema):
    queue = fields.String()
    dates = fields.List(fields.Integer())
    queue_lengths = fields.List(fields.Integer())
    avg_waiting_times = fields.List(fields.Float())


class WorkersSchema(ma.Schema):
    workers = fields.List(fields.Dict())


class QueuesSchema(ma.Schema):
    queues = fields.List(fields.Dict())
