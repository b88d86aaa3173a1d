"""A directory as storage: ``local`` workspaces and tests. Writes go to a
temporary name first and are renamed, so a reader never sees half a file."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO

from jobyard.backends.storage.base import ObjectInfo, Progress, Storage, clean_key, clean_prefix
from jobyard.backends.storage.errors import (
    BucketNotFound,
    ObjectNotFound,
    StorageError,
    StorageRefused,
)

CHUNK = 1024 * 1024


class FileStorage(Storage):
    name = "file"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / clean_key(key)

    def check(self) -> None:
        if not self.root.is_dir():
            raise BucketNotFound(f"directory {self.root} does not exist on the server")
        probe = self._path(self.probe_key())
        try:
            probe.write_bytes(b"jobyard probe")
            probe.unlink()
        except OSError as e:
            raise StorageRefused(f"directory {self.root} is not writable: {e.strerror}") from e

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        start = self.root / clean_prefix(prefix) if prefix.strip("/") else self.root
        if not start.is_dir():
            return
        for path in sorted(start.rglob("*")):
            if path.is_file() and not path.is_symlink() and ".jy-part-" not in path.name:
                stat = path.stat()
                yield ObjectInfo(
                    path.relative_to(self.root).as_posix(), stat.st_size, stat.st_mtime
                )

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(f"{key} not found in {self.root}")
        stat = path.stat()
        return ObjectInfo(clean_key(key), stat.st_size, stat.st_mtime)

    def open(self, key: str) -> AbstractContextManager[IO[bytes]]:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(f"{key} not found in {self.root}")
        return open(path, "rb")

    def upload(
        self, key: str, stream: IO[bytes], size: int | None = None, progress: Progress | None = None
    ) -> None:
        path = self._path(key)
        partial = path.with_name(f"{path.name}.jy-part-{uuid.uuid4().hex[:8]}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(partial, "wb") as out:
                while chunk := stream.read(CHUNK):
                    out.write(chunk)
                    if progress:
                        progress(len(chunk))
            os.replace(partial, path)
        except OSError as e:
            partial.unlink(missing_ok=True)
            raise StorageError(f"writing {path}: {e.strerror or e}") from e

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
