"""The interface every storage adapter implements.

Keys are "/"-separated and relative to the workspace's root (its bucket and
optional ``prefix``); adapters add the root, callers never see it. Transfers
take and give streams so that nothing is held in memory whole, and report
bytes as they move through an optional ``progress`` callback.
"""

from __future__ import annotations

import posixpath
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar

from jobyard.backends.storage.errors import ObjectNotFound

Progress = Callable[[int], None]  # called with the bytes moved since the last call
PROBE_PREFIX = ".jobyard-probe-"


@dataclass(frozen=True)
class ObjectInfo:
    key: str  # relative to the storage root
    size: int
    modified: float  # epoch seconds


def bucket_of(details: Mapping[str, Any]) -> str:
    """The bucket a workspace's details name (TAO's ``cloud_bucket_name`` too); "" if none."""
    return str(details.get("bucket_name") or details.get("cloud_bucket_name") or "")


def clean_key(key: str) -> str:
    """``key`` normalised inside the root; ``..`` and empty keys are refused."""
    cleaned = posixpath.normpath(key.replace("\\", "/").lstrip("/"))
    if cleaned in ("", ".", "..") or cleaned.startswith("../") or "\0" in cleaned:
        raise ObjectNotFound(f"{key!r} is not a key inside the workspace")
    return cleaned


def clean_prefix(prefix: str) -> str:
    """A listing prefix: "" (everything) or a cleaned key ending in "/"."""
    if prefix.strip("/") == "":
        return ""
    return clean_key(prefix) + "/"


class Storage(ABC):
    name: ClassVar[str]

    @abstractmethod
    def check(self) -> None:
        """Prove the root exists and is writable, or raise the precise StorageError."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, in key order, fetched page by page."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Size and time of one object; ``ObjectNotFound`` if absent."""

    @abstractmethod
    def open(self, key: str) -> AbstractContextManager[IO[bytes]]:
        """A readable stream of one object (streamed, not loaded)."""

    @abstractmethod
    def upload(
        self, key: str, stream: IO[bytes], size: int | None = None, progress: Progress | None = None
    ) -> None:
        """Write ``stream`` to ``key``; large objects go up in parts."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove one object; absent is fine."""

    def upload_file(self, key: str, path: Path, progress: Progress | None = None) -> None:
        with open(path, "rb") as stream:
            self.upload(key, stream, path.stat().st_size, progress)

    def download(self, key: str, stream: IO[bytes], progress: Progress | None = None) -> int:
        """Copy one object into ``stream`` in chunks; returns the bytes copied."""
        total = 0
        with self.open(key) as source:
            while chunk := source.read(1024 * 1024):
                stream.write(chunk)
                total += len(chunk)
                if progress:
                    progress(len(chunk))
        return total

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def probe_key(self) -> str:
        return PROBE_PREFIX + uuid.uuid4().hex
