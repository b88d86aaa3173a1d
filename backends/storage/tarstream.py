"""A tar.gz written as a stream of chunks, for downloads of any size.

``tarfile`` writes a member's data in one call, so wrapping it would buffer
a whole file; here each member is a PAX header, its bytes read in chunks and
padding, compressed by one ``zlib`` gzip stream. Memory stays at one chunk
whatever the archive's size. A file whose size changed since it was listed
(a log still growing) is cut or zero-padded to the listed size, so the
archive stays valid.
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO

BLOCK = 512
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Member:
    name: str  # path inside the archive
    size: int
    modified: float
    open: Callable[[], AbstractContextManager[IO[bytes]]]


def _header(member: Member) -> bytes:
    info = tarfile.TarInfo(member.name)
    info.size = member.size
    info.mtime = int(member.modified)
    info.mode = 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _data(member: Member) -> Iterator[bytes]:
    """Exactly ``member.size`` bytes of the file, then padding to a whole block."""
    left = member.size
    with member.open() as stream:
        while left > 0:
            chunk = stream.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
    while left > 0:  # the file shrank: keep the header's promise
        pad = min(CHUNK, left)
        left -= pad
        yield b"\0" * pad
    if member.size % BLOCK:
        yield b"\0" * (BLOCK - member.size % BLOCK)


def tar_gz(members: Iterable[Member], level: int = 6) -> Iterator[bytes]:
    """The gzip-compressed tar of ``members``, in chunks."""
    gz = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for member in members:
        for piece in _pieces(member):
            out = gz.compress(piece)
            if out:
                yield out
    yield gz.compress(b"\0" * (2 * BLOCK)) + gz.flush()


def _pieces(member: Member) -> Iterator[bytes]:
    yield _header(member)
    yield from _data(member)
