"""Every error becomes ``{"error_desc", "error_code"}``, mapped in one place.

Domain errors from the store (and later the engine) map to status codes here;
views raise them and never build error bodies themselves.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

from jobyard.store.crypto import CipherError
from jobyard.store.errors import Conflict, Duplicate, NotFound, StoreError, Unavailable

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with a status the client should see."""

    status = 400

    def __init__(self, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class Missing(ApiError):
    status = 404


class Refused(ApiError):
    status = 409


class ServiceUnavailable(ApiError):
    status = 503


def error_response(status: int, message: str, errors: Any = None) -> tuple[Response, int]:
    body: dict[str, Any] = {"error_desc": message, "error_code": status}
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response, status


def _from_http(error: HTTPException) -> tuple[Response, int]:
    status = error.code or 500
    if isinstance(error, InternalServerError):
        original = getattr(error, "original_exception", None)
        return _from_unexpected(original or error)
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    if isinstance(errors, dict) and set(errors) <= {"json", "query", "path", "headers"}:
        # webargs nests messages by location; one location is the common case
        if len(errors) == 1:
            errors = next(iter(errors.values()))
    message = data.get("message") or error.description or error.name
    if errors and status == 400:
        message = "invalid request: " + _summary(errors)
    return error_response(status, message, errors)


def _summary(errors: Any, prefix: str = "") -> str:
    """One readable line from nested marshmallow messages."""
    if isinstance(errors, dict):
        parts = [
            _summary(v, f"{prefix}{k}." if k != "_schema" else prefix) for k, v in errors.items()
        ]
        return "; ".join(p for p in parts if p)
    if isinstance(errors, list):
        texts = [e for e in errors if isinstance(e, str)]
        nested = [e for e in errors if not isinstance(e, str)]
        line = f"{prefix.rstrip('.') or 'body'}: {' '.join(texts)}" if texts else ""
        return "; ".join([line, *(_summary(n, prefix) for n in nested)]).strip("; ")
    return f"{prefix.rstrip('.')}: {errors}"


def _from_unexpected(error: BaseException) -> tuple[Response, int]:
    logger.error("unhandled error", exc_info=error)
    return error_response(500, "internal error; the server log has the details")


def _from_store(error: StoreError) -> tuple[Response, int]:
    if isinstance(error, NotFound):
        return error_response(404, str(error))
    if isinstance(error, Duplicate):
        return error_response(409, str(error), {"existing_id": error.existing_id})
    if isinstance(error, Conflict):
        return error_response(409, str(error))
    if isinstance(error, Unavailable):
        return error_response(503, str(error))
    if isinstance(error, CipherError):
        logger.error("%s", error)
        return error_response(500, "stored credentials cannot be read; see the server log")
    return _from_unexpected(error)


def register(app: Flask) -> None:
    app.register_error_handler(ApiError, lambda e: error_response(e.status, e.message, e.errors))
    app.register_error_handler(StoreError, _from_store)
    app.register_error_handler(HTTPException, _from_http)
    app.register_error_handler(Exception, _from_unexpected)
