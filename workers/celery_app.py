"""The Celery app factory and the settings DESIGN.md asks for."""

from __future__ import annotations

from celery import Celery
from kombu.entity import Queue

from jobyard.schemas.settings import Settings
from jobyard.workers.enqueue import TICK
from jobyard.workers.turns import PRIORITY_STEPS

BACKEND_QUEUES = ("process", "kubernetes", "slurm", "lepton")
MAINTENANCE_QUEUE = "maintenance"
CONTROL_QUEUE = "control"
QUEUES = (*BACKEND_QUEUES, CONTROL_QUEUE, MAINTENANCE_QUEUE)


def create_celery(settings: Settings) -> Celery:
    if not settings.redis_url:
        raise ValueError("create_celery needs a resolved redis_url")
    app = Celery("jobyard", broker=settings.redis_url, include=["jobyard.workers.tasks"])
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_time_limit=300,
        task_soft_time_limit=240,
        task_default_queue=CONTROL_QUEUE,
        task_queues=[Queue(name) for name in QUEUES],
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": 3600,
            "priority_steps": list(PRIORITY_STEPS),  # workers.turns: turns after the rest
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        enable_utc=True,
        beat_schedule={
            "tick": {
                "task": TICK,
                "schedule": settings.reconcile_interval_seconds,
                "options": {
                    "queue": CONTROL_QUEUE,
                    "expires": settings.reconcile_interval_seconds * 2,
                },
            }
        },
    )
    app.conf.jobyard_settings = settings
    return app
