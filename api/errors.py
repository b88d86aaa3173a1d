"""Every error becomes ``{"error_desc", "error_code"}``, mapped in one place.

Domain errors of every layer below (the store, compute backends, storage adapters) map to
status codes here; views raise them and never build error bodies themselves. An outage
(MongoDB, the broker, a backend or bucket unreachable) is a 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

from jobyard.backends.errors import (
    BackendError,
    BackendUnavailable,
    ResultNotFound,
    UnknownBackend,
    UnsupportedOperation,
    WorkspaceMissing,
)
from jobyard.backends.storage.errors import ObjectNotFound, StorageError, StorageUnreachable
from jobyard.store.crypto import CipherError
from jobyard.store.errors import (
    Conflict,
    Duplicate,
    InvalidValue,
    NotFound,
    StoreError,
    Unavailable,
)

RETRY_AFTER_SECONDS = 5
E = TypeVar("E", bound=Exception)

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with a status the client should see."""

    status = 400

    def __init__(
        self, message: str, errors: dict[str, Any] | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.retry_after = retry_after


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


class TooManyRequests(ApiError):
    status = 429


class ServiceUnavailable(ApiError):
    status = 503


class BadGateway(ApiError):
    status = 502


class NotImplementedHere(ApiError):
    status = 501


def annotated(error: E, what: str) -> E:
    """The same error, saying first what the server was doing (``workspace w1: ...``)."""
    return type(error)(f"{what}: {error}")


def error_response(
    status: int, message: str, errors: Any = None, retry_after: int | None = None
) -> tuple[Response, int]:
    body: dict[str, Any] = {"error_desc": message, "error_code": status}
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    if retry_after is None and status == 503:
        retry_after = RETRY_AFTER_SECONDS
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
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
    if isinstance(error, InvalidValue):
        return error_response(400, str(error))
    if isinstance(error, Unavailable):
        logger.warning("%s", error)
        return error_response(503, f"{error}; try again shortly")
    if isinstance(error, CipherError):
        logger.error("%s", error)
        return error_response(500, "stored credentials cannot be read; see the server log")
    return _from_unexpected(error)


def _from_storage(error: StorageError) -> tuple[Response, int]:
    """The service being down is a 503; an answer that is not one is a 502; a workspace
    that is unusable as configured (bucket, credentials, path, type) is the client's 400."""
    if isinstance(error, StorageUnreachable):
        return error_response(503, str(error))
    if isinstance(error, ObjectNotFound):
        return error_response(404, str(error))
    if type(error) is StorageError:
        return error_response(502, str(error))
    return error_response(400, str(error))


def _from_backend(error: BackendError) -> tuple[Response, int]:
    if isinstance(error, ResultNotFound | WorkspaceMissing):
        return error_response(404, str(error))
    if isinstance(error, UnsupportedOperation):
        return error_response(501, str(error))
    if isinstance(error, BackendUnavailable | UnknownBackend):
        return error_response(503, f"the job's backend cannot be reached: {error}")
    return error_response(502, str(error))


def register(app: Flask) -> None:
    app.register_error_handler(
        ApiError, lambda e: error_response(e.status, e.message, e.errors, e.retry_after)
    )
    app.register_error_handler(StoreError, _from_store)
    app.register_error_handler(StorageError, _from_storage)
    app.register_error_handler(BackendError, _from_backend)
    app.register_error_handler(HTTPException, _from_http)
    app.register_error_handler(Exception, _from_unexpected)
