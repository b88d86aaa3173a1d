"""The storage error tree. SDK and OS errors are wrapped at the boundary so
callers can say precisely what failed (refused credentials, no such bucket,
endpoint unreachable) without knowing which provider was asked."""

from __future__ import annotations


class StorageError(Exception):
    """Root of every error a storage adapter raises."""


class StorageNotSupported(StorageError):
    """The workspace's cloud type has no storage adapter (yet)."""


class StorageUnreachable(StorageError):
    """The endpoint did not answer: wrong URL, DNS, network, or the service is down."""


class StorageRefused(StorageError):
    """The endpoint answered but refused the credentials or the operation."""


class BucketNotFound(StorageError):
    """The endpoint works but has no bucket (or directory) by that name."""


class ObjectNotFound(StorageError):
    """No object under that key."""
