"""The backends' error tree. SDK and OS errors are wrapped at the boundary
(``raise BackendUnavailable(...) from e``); the engine retries only the
transient ones."""

from __future__ import annotations


class BackendError(Exception):
    """Root of every error a backend raises."""


class BackendUnavailable(BackendError):
    """Transient: host unreachable, API down, node failure. Retried with backoff."""


class SubmitRejected(BackendError):
    """Permanent: the backend refused the run (bad partition, bad image ...)."""


class WorkspaceMissing(SubmitRejected):
    """The workspace a backend target or a job names no longer exists."""


class UnsupportedOperation(BackendError):
    """The backend lacks the capability the operation needs."""


class UnknownBackend(BackendError):
    """No backend by that name is registered, or its extra is not installed."""


class ResultNotFound(BackendError):
    """No such result file, or a path that leaves the results directory."""
