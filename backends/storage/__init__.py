"""Object storage behind a workspace: where datasets are read and results kept.

One small interface (``base.Storage``), one module per provider (``s3``,
``file``), and ``factory.storage_for`` choosing by the workspace's cloud type.
Like the compute backends, nothing here imports Flask, Celery or MongoDB.
"""

from jobyard.backends.storage.base import ObjectInfo, Storage, bucket_of
from jobyard.backends.storage.errors import (
    BucketNotFound,
    ObjectNotFound,
    StorageError,
    StorageNotSupported,
    StorageRefused,
    StorageUnreachable,
)
from jobyard.backends.storage.factory import storage_for

__all__ = [
    "BucketNotFound",
    "ObjectInfo",
    "ObjectNotFound",
    "Storage",
    "StorageError",
    "StorageNotSupported",
    "StorageRefused",
    "StorageUnreachable",
    "bucket_of",
    "storage_for",
]
