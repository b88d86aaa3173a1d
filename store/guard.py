"""pymongo errors become store errors at the repository boundary.

Every public method of a repository class decorated with ``@guarded`` raises only the
store's own errors: an unreachable or timed-out server is ``Unavailable`` (the API
answers 503 with a retry hint, a task tries again), a value MongoDB cannot hold (an int
past 8 bytes, a bad key) is ``InvalidValue`` (the caller's input, a 400), and any other
driver failure a plain ``StoreError`` carrying the driver's words.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from bson.errors import BSONError, InvalidDocument
from pymongo.errors import (
    ConnectionFailure,
    ExecutionTimeout,
    PyMongoError,
    WTimeoutError,
)

from jobyard.store.errors import InvalidValue, StoreError, Unavailable

T = TypeVar("T", bound=type)
_TRANSIENT = (ConnectionFailure, ExecutionTimeout, WTimeoutError)


def translate(error: Exception) -> StoreError:
    """The store error standing for a driver (or encoding) error."""
    if isinstance(error, _TRANSIENT):
        return Unavailable(f"MongoDB unreachable ({type(error).__name__})")
    if isinstance(error, OverflowError):
        return InvalidValue("a number is too large to store: integers must fit in 8 bytes")
    if isinstance(error, InvalidDocument | BSONError):
        return InvalidValue(f"a value cannot be stored: {error}")
    return StoreError(f"MongoDB refused the operation: {error}")


def _wrap(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except (PyMongoError, OverflowError, BSONError) as e:
            raise translate(e) from e

    return wrapper


def guarded(cls: T) -> T:
    """Wrap every public method of a repository class (see the module docstring)."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, _wrap(member))
    return cls
