"""What tasks need, built lazily once per worker process (after the fork:
a MongoClient must not cross one) and kept on the Celery app, not in globals."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import redis

from jobyard.backends import registry
from jobyard.backends.base import Backend
from jobyard.backends.errors import SubmitRejected
from jobyard.schemas.settings import Settings
from jobyard.store import Store, connect
from jobyard.store.crypto import Cipher
from jobyard.store.errors import NotFound

ATTRIBUTE = "jobyard_context"


@dataclass
class Context:
    settings: Settings
    store: Store
    redis: redis.Redis
    celery: Any
    _backends: dict[str, tuple[float, Backend]] = field(default_factory=dict)

    def backend(self, name: str) -> Backend:
        """The backend serving target ``name``, kept per worker process so connections are
        reused; rebuilt when the workspace it was built from changed (a new key, a new
        login node list)."""
        kind, workspace_id = registry.split_target(name)
        version: float = 0.0
        config: dict[str, Any] = {}
        if workspace_id is not None:
            try:
                version, config = self.store.workspaces.for_backend(workspace_id)
            except NotFound as e:
                raise SubmitRejected(f"backend {name}: {e}") from e
        cached = self._backends.get(name)
        if cached is not None and cached[0] == version:
            return cached[1]
        if cached is not None:
            cached[1].close()
        backend = registry.create(kind, self.settings, config)
        self._backends[name] = (version, backend)
        return backend

    def lock(self, name: str, seconds: float) -> bool:
        """A Redis lease so that two ticks or reconciles of one backend never overlap."""
        return bool(
            self.redis.set(
                f"jobyard:lock:{name}", os.getpid(), nx=True, px=max(1, int(seconds * 1000))
            )
        )

    def unlock(self, name: str) -> None:
        self.redis.delete(f"jobyard:lock:{name}")


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
