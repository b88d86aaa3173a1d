"""Logs an operator's stack can read: ``JOBYARD_LOG_FORMAT=json`` writes one JSON object
per line (time, level, logger, message, and ``request_id``, ``job_id``, ``org``,
``backend``, ``task_id`` where known). The API's request id travels with the Celery
messages it sends, so one grep follows a request from HTTP to the backend.

The context lives in ``contextvars``: a gunicorn thread or a Celery task sets it for the
code it runs, and every log record made there carries it."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

FIELDS = ("request_id", "job_id", "org", "backend", "task_id")
CONTEXT: dict[str, ContextVar[str | None]] = {f: ContextVar(f, default=None) for f in FIELDS}


@contextmanager
def bound(**values: str | None) -> Iterator[None]:
    """These context fields for the code inside (previous values back after it)."""
    tokens = [(CONTEXT[k], CONTEXT[k].set(v)) for k, v in values.items() if v is not None]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current(field: str) -> str | None:
    return CONTEXT[field].get()


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for field in FIELDS:
            if not hasattr(record, field):
                setattr(record, field, CONTEXT[field].get())
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                out[field] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(level: str, fmt: str) -> None:
    """The root logger's one handler (stderr), in the chosen format, with the context."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
