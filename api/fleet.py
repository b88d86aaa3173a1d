"""Workers and queues (seed 004's models) for the people who scale the pools.

``/api/v2/admin/...`` is for admins; what it shows is the deployment's, but never another
org's ids: a task or a waiting job of another org is shown as ``another org's``. Every
member of an org sees ``/api/v2/orgs/{org}/queues``: the jobs of their org waiting on
each queue."""

from __future__ import annotations

import time
from typing import Any

from flask.views import MethodView

from jobyard.api.auth import admin_required
from jobyard.api.errors import Missing
from jobyard.api.parser import Blueprint
from jobyard.api.services import principal, services
from jobyard.schemas.fleet import (
    QueueMetricArgsSchema,
    QueueMetricsSchema,
    QueuesSchema,
    WorkersSchema,
    queue_metrics,
    worker_view,
)
from jobyard.workers import fleet
from jobyard.workers.celery_app import QUEUES

blp = Blueprint("fleet", __name__, url_prefix="/api/v2", description="Workers and queues")
OTHER = "another org's"
DROP_FACTOR = 10  # a worker silent for 10x the lost age is forgotten


def _masked(store: Any, workers: list[dict[str, Any]], org: str) -> None:
    """Replace the ids of other orgs' jobs in the workers' running tasks."""
    about = {t["about"] for w in workers for t in w.get("running", []) if t.get("about")}
    docs = store.db.jobs.find({"_id": {"$in": sorted(about)}}, {"org": 1}) if about else []
    owners = {d["_id"]: d["org"] for d in docs}
    for worker in workers:
        for task in worker.get("running", []):
            if owners.get(task.get("about"), org) != org:
                task["about"] = OTHER


@blp.route("/admin/workers")
class Workers(MethodView):
    @admin_required
    @blp.response(200, WorkersSchema)
    def get(self) -> dict[str, Any]:
        """Every live worker: queues, concurrency, running tasks, tasks done, activity,
        machine stats; ``state: lost`` when silent past JOBYARD_WORKER_LOST_AFTER_SECONDS"""
        svc = services()
        now, lost = time.time(), svc.settings.worker_lost_after_seconds
        svc.store.fleet.drop_silent(now - lost * DROP_FACTOR)
        shown = [worker_view(d, now, lost) for d in svc.store.fleet.workers()]
        _masked(svc.store, shown, principal().org)
        return {"workers": shown}


def _org_safe(entries: list[dict[str, Any]], org: str, store: Any) -> list[dict[str, Any]]:
    ids = [e["next_job"]["id"] for e in entries if e.get("next_job")]
    owners = {d["_id"]: d["org"] for d in store.db.jobs.find({"_id": {"$in": ids}}, {"org": 1})}
    for entry in entries:
        if entry.get("next_job") and owners.get(entry["next_job"]["id"]) != org:
            entry["next_job"]["id"] = OTHER
    return entries


@blp.route("/admin/queues")
class Queues(MethodView):
    @admin_required
    @blp.response(200, QueuesSchema)
    def get(self) -> dict[str, Any]:
        """Per queue: broker messages waiting and the oldest one's age, the jobs waiting
        for it, the next one and the average wait"""
        svc = services()
        entries = fleet.queues(svc.store, svc.broker, time.time())
        return {"queues": _org_safe(entries, principal().org, svc.store)}


@blp.route("/admin/queues/<string:queue>:metrics")
class QueueMetrics(MethodView):
    @admin_required
    @blp.arguments(QueueMetricArgsSchema, location="query")
    @blp.response(200, QueueMetricsSchema)
    def get(self, args: dict[str, Any], queue: str) -> dict[str, Any]:
        """Seed 004's ``queue_metrics``: per ``interval`` seconds from ``from`` to ``to``
        (default: the last hour), the longest average wait and that sample's length"""
        if queue not in QUEUES:
            raise Missing(f"no queue {queue!r}; queues: {', '.join(QUEUES)}")
        now = time.time()
        end = args.get("to", now)
        start = args.get("from_", end - 3600)
        samples = services().store.fleet.samples(queue, start, end)
        return {"queue": queue, **queue_metrics(samples, start, end, args["interval"])}


@blp.route("/orgs/<string:org_name>/queues")
class OrgQueues(MethodView):
    @blp.response(200, QueuesSchema)
    def get(self, org_name: str) -> dict[str, Any]:
        """The org's jobs waiting on each queue: how many, the next one, the average wait"""
        svc = services()
        return {"queues": fleet.queues(svc.store, svc.broker, time.time(), org_name)}
