"""Per request: the id that follows it into the logs and the Celery tasks it causes
(``X-Request-Id``, taken from the client when it is a plain token, else made here, and
returned in the response), its Prometheus samples, and in ``JOBYARD_LOG_FORMAT=json`` one
access line (gunicorn's own access log is off then)."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, current_app, g, request

from jobyard.workers import logs, telemetry

HEADER = "X-Request-Id"
LOG_ACCESS = "JOBYARD_LOG_ACCESS"
_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,64}")
access = logging.getLogger("jobyard.access")


def _start() -> None:
    given = request.headers.get(HEADER, "")
    g.request_id = given if _TOKEN.fullmatch(given) else uuid.uuid4().hex
    g.request_started = time.perf_counter()
    g.request_context = logs.bound(request_id=g.request_id)
    g.request_context.__enter__()


def _finish(response: Response) -> Response:
    rid = g.get("request_id")
    if rid is None:
        return response
    response.headers[HEADER] = rid
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    seconds = time.perf_counter() - g.request_started
    telemetry.HTTP_REQUESTS.labels(route, request.method, str(response.status_code)).inc()
    telemetry.HTTP_SECONDS.labels(route, request.method).observe(seconds)
    if current_app.config.get(LOG_ACCESS):
        access.info("%s %s %s %.1fms", request.method, route, response.status_code, seconds * 1000)
    return response


def _teardown(_: BaseException | None) -> None:
    context = g.pop("request_context", None)
    if context is not None:
        context.__exit__(None, None, None)


def install(app: Flask, log_access: bool) -> None:
    """Before the auth guard, so that its refusals carry the id and are counted too."""
    app.config[LOG_ACCESS] = log_access
    app.before_request(_start)
    app.after_request(_finish)
    app.teardown_request(_teardown)
