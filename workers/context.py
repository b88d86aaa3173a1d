"""What tasks need, built lazily once per worker process (after the fork:
a MongoClient must not cross one) and kept on the Celery app, not in globals."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import redis

from jobyard.backends.base import Backend
from jobyard.backends.factory import Resources
from jobyard.schemas.settings import Settings
from jobyard.store import Store, connect
from jobyard.store.crypto import Cipher
from jobyard.workers import locks

if TYPE_CHECKING:
    from jobyard.workers.search import Studies

ATTRIBUTE = "jobyard_context"


@dataclass
class Context:
    settings: Settings
    store: Store
    redis: redis.Redis
    celery: Any
    resources: Resources = field(init=False)

    def __post_init__(self) -> None:
        self.resources = Resources(self.settings, self.store.workspaces)

    def backend(self, target: str) -> Backend:
        """The backend serving ``target``, kept per worker process so connections are
        reused; rebuilt when the workspace it was built from changed."""
        return self.resources.backend(target)

    @cached_property
    def studies(self) -> Studies:
        """AutoML studies this process has open (optuna is the ``automl`` extra)."""
        from jobyard.workers.search import Studies

        return Studies(self.store.db)

    def lease(self, name: str, seconds: float) -> locks.Lease | None:
        """A Redis lease so that two ticks, reconciles or uploads never overlap."""
        return locks.acquire(self.redis, name, seconds)


def context_for(app: Any) -> Context:
    ctx: Context | None = getattr(app, ATTRIBUTE, None)
    if ctx is None or getattr(app, ATTRIBUTE + "_pid", None) != os.getpid():
        settings: Settings = app.conf.jobyard_settings
        assert settings.mongo_uri and settings.redis_url and settings.encryption_key
        store = connect(settings.mongo_uri, settings.mongo_db, Cipher(settings.encryption_key))
        ctx = Context(settings, store, redis.Redis.from_url(settings.redis_url), app)
        setattr(app, ATTRIBUTE, ctx)
        setattr(app, ATTRIBUTE + "_pid", os.getpid())
    return ctx
