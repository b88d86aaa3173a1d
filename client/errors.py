"""What can go wrong talking to jobyard, one class per kind, each carrying the server's
``error_desc`` and ``error_code`` (and per-field ``errors`` for bad input)."""

from __future__ import annotations

from typing import Any


class JobyardError(Exception):
    """A request jobyard answered with an error, or could not be made."""

    def __init__(self, error_desc: str, error_code: int, errors: Any = None) -> None:
        super().__init__(f"{error_code}: {error_desc}")
        self.error_desc = error_desc
        self.error_code = error_code
        self.errors = errors


class BadRequest(JobyardError):
    """400: the request is wrong; ``errors`` says which fields."""


class Unauthorized(JobyardError):
    """401: the key or token is not valid."""


class Forbidden(JobyardError):
    """403: not allowed for this key (another org's path, an admin-only action)."""


class NotFound(JobyardError):
    """404."""


class Conflict(JobyardError):
    """409: the state does not allow it (a duplicate, a job still running ...)."""


class TooManyRequests(JobyardError):
    """429: slowed down (failed logins)."""


class Unavailable(JobyardError):
    """503 after the retries, or the server could not be reached at all."""


class ServerError(JobyardError):
    """Any other 5xx."""


BY_STATUS: dict[int, type[JobyardError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: TooManyRequests,
    503: Unavailable,
}


def from_response(status: int, body: Any) -> JobyardError:
    """The exception for an error response (any body: a proxy's HTML page too)."""
    desc = body.get("error_desc") if isinstance(body, dict) else None
    errors = body.get("errors") if isinstance(body, dict) else None
    kind = BY_STATUS.get(status, ServerError if status >= 500 else JobyardError)
    return kind(str(desc or f"HTTP {status}"), status, errors)
