"""Liveness (the process answers) and readiness (MongoDB and Redis answer)."""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from jobyard.api.errors import ServiceUnavailable
from jobyard.api.parser import Blueprint
from jobyard.api.services import services

logger = logging.getLogger(__name__)

blp = Blueprint("health", __name__, url_prefix="/api/v2/health", description="Health checks")


class HealthSchema(ma.Schema):
    status = ma.fields.String()
    checks = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())


@blp.route("/liveness")
class Liveness(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, Any]:
        """The API process is up"""
        return {"status": "ok", "checks": {}}


@blp.route("/readiness")
class Readiness(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, description="A dependency is down")
    def get(self) -> dict[str, Any]:
        """MongoDB and the Redis broker both answer"""
        svc = services()
        checks: dict[str, str] = {}
        for name, ping in (("mongodb", svc.store.ping), ("redis", svc.broker_ping)):
            try:
                ping()
                checks[name] = "ok"
            except Exception as e:  # any failure means not ready; say which
                logger.warning("readiness: %s failed: %s", name, type(e).__name__)
                checks[name] = f"unreachable ({type(e).__name__})"
        failed = [name for name, state in checks.items() if state != "ok"]
        if failed:
            raise ServiceUnavailable(f"not ready: {', '.join(failed)} unreachable", checks)
        return {"status": "ok", "checks": checks}
