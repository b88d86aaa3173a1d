"""The HTTP API: ``create_app`` builds a Flask app from settings."""

from __future__ import annotations

from typing import Any

import flask_smorest
import redis
from flask import Flask
from werkzeug.routing import BaseConverter

from jobyard.api import (
    auth,
    automl,
    backups,
    catalog,
    datasets,
    errors,
    fleet,
    health,
    inference,
    job_files,
    jobs,
    models,
    observe,
    quotas,
    ui,
    workload_templates,
    workspaces,
)
from jobyard.api.services import EXTENSION, Services
from jobyard.api.throttle import LoginThrottle
from jobyard.api.tokens import Tokens
from jobyard.backends.factory import Resources
from jobyard.schemas.common import ErrorSchema
from jobyard.schemas.settings import Settings, SettingsError
from jobyard.store import Store, connect
from jobyard.store.crypto import Cipher
from jobyard.workers.celery_app import create_celery

API_VERSION = "0.1.0"
BLUEPRINTS = (
    auth.blp,
    health.blp,
    workspaces.blp,
    backups.blp,
    datasets.blp,
    jobs.blp,
    job_files.blp,
    catalog.blp,
    workload_templates.blp,
    fleet.blp,
    quotas.blp,
    automl.blp,
    models.blp,
    inference.blp,
)


class IdConverter(BaseConverter):
    """An id in a path: stops at ':' so that ``/jobs/<id>:logs`` routes work."""

    regex = r"[A-Za-z0-9_.-]+"


class Api(flask_smorest.Api):
    """flask-smorest's Api with jobyard's error shape, documented and served."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self) -> None:
        errors.register(self._app)


def _require(value: str | None, variable: str) -> str:
    if not value:
        raise SettingsError(variable, "required (jobyard up generates it into the data dir)")
    return value


def create_app(settings: Settings, store: Store | None = None) -> Flask:
    jwt_secret = _require(settings.jwt_secret, "JOBYARD_JWT_SECRET")
    if store is None:
        cipher = Cipher(_require(settings.encryption_key, "JOBYARD_ENCRYPTION_KEY"))
        store = connect(
            _require(settings.mongo_uri, "JOBYARD_MONGO_URI"), settings.mongo_db, cipher
        )
    redis_url = _require(settings.redis_url, "JOBYARD_REDIS_URL")
    store.ensure_indexes()

    app = Flask("jobyard")
    app.config.update(_flask_config(settings))
    broker = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    app.extensions[EXTENSION] = Services(
        settings=settings,
        store=store,
        tokens=Tokens(jwt_secret, settings.token_ttl_seconds),
        broker_ping=broker.ping,
        broker=broker,
        celery=create_celery(settings),
        resources=Resources(settings, store.workspaces),
        login_throttle=LoginThrottle(
            broker,
            settings.login_failures_per_key,
            settings.login_failures_per_client,
            settings.login_failure_window_seconds,
        ),
    )
    app.url_map.converters["id"] = IdConverter
    api = Api(app, spec_kwargs=_spec_kwargs())
    api.register_converter(IdConverter, lambda _: {"type": "string", "pattern": IdConverter.regex})
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    app.register_blueprint(ui.blp)  # plain Flask: files, not API operations
    observe.install(app, log_access=settings.log_format == "json")
    app.before_request(auth.require_token)
    return app


def _flask_config(settings: Settings) -> dict[str, Any]:
    return {
        "API_TITLE": "jobyard",
        "API_VERSION": API_VERSION,
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v2",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "/swagger-ui",
        "OPENAPI_SWAGGER_UI_URL": "https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        "MAX_CONTENT_LENGTH": settings.max_body_bytes,
        "JSON_SORT_KEYS": False,
    }


def _spec_kwargs() -> dict[str, Any]:
    return {
        "info": {"description": "Job orchestrator for ML training work, TAO API v2 compatible."},
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
        },
        "security": [{"bearerAuth": []}],
    }
