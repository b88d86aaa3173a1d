"""The store's error tree; pymongo errors are wrapped at this boundary."""

from __future__ import annotations


class StoreError(Exception):
    """Root of every error the store raises."""


class NotFound(StoreError, LookupError):
    """No document with that id in the caller's org (a LookupError, so layers below the
    store, which cannot import it, can still tell "not there" from a failure)."""

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident} not found")
        self.kind = kind
        self.ident = ident


class Conflict(StoreError):
    """The write would break a uniqueness or state rule."""


class Duplicate(Conflict):
    """An identical document exists; ``force_create`` makes another anyway."""

    def __init__(self, kind: str, existing_id: str) -> None:
        super().__init__(
            f"an identical {kind} already exists: {existing_id}; "
            'send "force_create": true to create another'
        )
        self.kind = kind
        self.existing_id = existing_id


class StaleState(Conflict):
    """A compare-and-set found the document in another state than expected."""

    def __init__(self, kind: str, ident: str, expected: object, actual: object) -> None:
        super().__init__(f"{kind} {ident} is {actual}, expected {expected}")
        self.kind = kind
        self.ident = ident
        self.expected = expected
        self.actual = actual


class InvalidValue(StoreError):
    """A value MongoDB cannot store (an integer past 8 bytes, a key it refuses): the
    caller's input, refused before anything was written."""


class Unavailable(StoreError):
    """MongoDB cannot be reached (or timed out): transient, try again."""
