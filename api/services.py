"""What views need, built once by ``create_app`` and found through
``current_app.extensions`` rather than module globals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, g

from jobyard.api import accelerators
from jobyard.api.cache import TtlCache
from jobyard.api.throttle import LoginThrottle
from jobyard.api.tokens import Principal, Tokens
from jobyard.backends.factory import Resources
from jobyard.schemas.settings import Settings
from jobyard.store import Store

EXTENSION = "jobyard"


@dataclass
class Services:
    settings: Settings
    store: Store
    tokens: Tokens
    broker_ping: Callable[[], object]
    broker: Any  # redis.Redis: the queue views read the broker's lists
    celery: Any
    resources: Resources
    login_throttle: LoginThrottle
    # answers of jobs:gpu_types, kept per process (tests put in one with their own clock)
    accelerator_cache: TtlCache = field(default_factory=accelerators.new_cache)


def services(app: Flask | None = None) -> Services:
    found: Services = (app or current_app).extensions[EXTENSION]
    return found


def principal() -> Principal:
    found: Principal = g.principal
    return found
