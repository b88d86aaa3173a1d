"""Job logs, as bounded chunks addressed by their byte position in the job's log.

A chunk's ``_id`` is (job, position): if a reconcile dies after storing a
chunk but before advancing the job's offsets, the next one finds the chunk
already there and advances by *its* size, so bytes are kept exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bson import Binary
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from jobyard.store.guard import guarded

DUPLICATE_KEY = 11000


def chunk_id(job_id: str, position: int) -> str:
    return f"{job_id}:{position:015d}"


def _chunk(job_id: str, org: str, run: int, position: int, data: bytes) -> dict[str, Any]:
    """One stored log chunk (``append`` and ``append_many`` write the same shape)."""
    return {
        "_id": chunk_id(job_id, position),
        "job_id": job_id,
        "org": org,
        "run": run,
        "pos": position,
        "size": len(data),
        "data": Binary(data),
    }


@guarded
class Logs:
    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self._coll = db["job_logs"]

    def append(self, job_id: str, org: str, run: int, position: int, data: bytes) -> int:
        """Store ``data`` at ``position``; returns the size stored there."""
        try:
            self._coll.insert_one(_chunk(job_id, org, run, position, data))
            return len(data)
        except DuplicateKeyError:
            existing = self._coll.find_one({"_id": chunk_id(job_id, position)}, {"size": 1})
            return int(existing["size"]) if existing else 0

    def append_many(
        self, chunks: Sequence[tuple[str, str, int, int, bytes]]
    ) -> dict[tuple[str, int], int]:
        """Store many (job, org, run, position, data) chunks in one round trip; the size
        stored at each (job, position), which for a chunk stored before is its own."""
        if not chunks:
            return {}
        docs = [_chunk(*chunk) for chunk in chunks]
        sizes = {(c[0], c[3]): len(c[4]) for c in chunks}
        try:
            self._coll.insert_many(docs, ordered=False)
        except BulkWriteError as e:
            if any(err.get("code") != DUPLICATE_KEY for err in e.details.get("writeErrors", [])):
                raise
            clashes = [docs[err["index"]]["_id"] for err in e.details["writeErrors"]]
            for found in self._coll.find(
                {"_id": {"$in": clashes}}, {"job_id": 1, "pos": 1, "size": 1}
            ):
                sizes[(found["job_id"], int(found["pos"]))] = int(found["size"])
        return sizes

    def read(self, org: str, job_id: str, offset: int, limit: int) -> tuple[bytes, int]:
        """Bytes from ``offset`` (at most ``limit``) and the offset to ask for next."""
        base = {"org": org, "job_id": job_id}
        first = self._coll.find_one(
            {**base, "pos": {"$lte": offset}}, {"pos": 1}, sort=[("pos", DESCENDING)]
        )
        start_at = int(first["pos"]) if first else offset
        out = bytearray()
        next_offset = offset
        for chunk in self._coll.find({**base, "pos": {"$gte": start_at}}).sort("pos", ASCENDING):
            start, data = int(chunk["pos"]), bytes(chunk["data"])
            if start > next_offset:
                next_offset = start  # older bytes were dropped by retention
            piece = data[max(0, next_offset - start) :][: limit - len(out)]
            out += piece
            next_offset += len(piece)
            if len(out) >= limit:
                break
        return bytes(out), next_offset

    def tail(self, org: str, job_id: str, lines: int) -> bytes:
        """The last ``lines`` lines of the log."""
        pieces: list[bytes] = []
        newlines = 0
        cursor = self._coll.find({"org": org, "job_id": job_id}).sort("pos", DESCENDING)
        for chunk in cursor:
            data = bytes(chunk["data"])
            pieces.append(data)
            newlines += data.count(b"\n")
            if newlines > lines:
                break
        text = b"".join(reversed(pieces))
        kept = text.rstrip(b"\n").split(b"\n")[-lines:]
        return b"\n".join(kept) + (b"\n" if kept and text.endswith(b"\n") else b"")

    def trim(self, job_id: str, total: int, keep_bytes: int) -> int:
        """Drop whole chunks that end before the last ``keep_bytes`` of the log."""
        if total <= keep_bytes:
            return 0
        result = self._coll.delete_many({"job_id": job_id, "pos": {"$lt": total - keep_bytes}})
        return result.deleted_count

    def delete_job(self, job_id: str) -> None:
        self._coll.delete_many({"job_id": job_id})
