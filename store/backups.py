"""Backup and restore of jobyard's MongoDB state: the dump format and the repository
that reads and writes every collection.

A backup is one gzip stream of JSON lines (MongoDB extended JSON, so binary log chunks
and numbers round-trip exactly): a header, one line per document
(``{"c": collection, "d": document}``) and a trailer with the count, which tells a
complete file from a truncated one. It is produced while it is read, never held in
memory. Documents are copied as stored: credentials stay encrypted, and the header
records a fingerprint of the encryption key so that a restore with another key is refused
instead of leaving credentials nobody can read.

A restore replaces the documents in its scope: it validates the whole file first (a bad
file changes nothing), then wipes and inserts collection by collection; running it again
after a failure converges to the same state. Where the bytes go (a workspace bucket, a
directory) is the caller's business (``workers/maintenance.py``).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import hmac
import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any

from bson import json_util
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import PyMongoError

from jobyard.store.errors import StoreError
from jobyard.store.guard import guarded
from jobyard.store.operations import COLLECTION as OPERATIONS

FORMAT = "jobyard-backup/1"
# not state but reports of the moment: maintenance runs, worker heartbeats, queue samples
EXCLUDED = frozenset({OPERATIONS, "workers", "queue_samples"})
ORG_KEYS = {"orgs": "_id"}  # collections whose org is not in an "org" field
BATCH = 500
LEASE_SECONDS = 300.0
REPORT_EVERY = 1000
JSON = json_util.JSONOptions(json_mode=json_util.JSONMode.RELAXED, tz_aware=True)
Report = Callable[[Mapping[str, Any]], None]


class BackupError(StoreError):
    """The backup file cannot be restored here (wrong org, key, format, or truncated)."""


# --- pure parts ------------------------------------------------------------------------


def key_check(key_text: str) -> str:
    """Names the encryption key without revealing it."""
    return hmac.new(key_text.encode(), b"jobyard-backup", hashlib.sha256).hexdigest()[:16]


# Documents that are the release's, not state: written again at every start-up (and after
# a restore, by the re-index), so a backup leaves them out and a restore keeps them.
RELEASE_DATA: dict[str, dict[str, Any]] = {"catalog": {"builtin": {"$ne": True}}}


def scope_filter(collection: str, org: str | None) -> dict[str, Any]:
    found = dict(RELEASE_DATA.get(collection, {}))
    if org is not None:
        found[ORG_KEYS.get(collection, "org")] = org
    return found


def encode(obj: Mapping[str, Any]) -> bytes:
    return json_util.dumps(obj, json_options=JSON).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    value = json_util.loads(line, json_options=JSON)
    if not isinstance(value, dict):
        raise BackupError("not a jobyard backup: a line is not a JSON object")
    return value


def check_header(header: Mapping[str, Any], org: str | None, key_text: str) -> None:
    """Refuse a file that is not ours, was made with another key, or covers more
    than the caller may replace (``org`` None: the operator, who may restore any)."""
    if header.get("format") != FORMAT:
        raise BackupError(f"not a jobyard backup (format {header.get('format')!r})")
    if header.get("key_check") != key_check(key_text):
        raise BackupError(
            "this backup was made with another JOBYARD_ENCRYPTION_KEY; "
            "restore it where that key is configured"
        )
    if org is not None and header.get("org") != org:
        scope = f"org {header['org']}" if header.get("org") else "the whole deployment"
        raise BackupError(
            f"this is a backup of {scope}; it cannot be restored into org {org}"
            + ("" if header.get("org") else " (use `jobyard admin restore`)")
        )


def gzip_chunks(lines: Iterable[bytes], level: int = 6) -> Iterator[bytes]:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=level, mtime=0) as gz:
        for line in lines:
            gz.write(line)
            if out.tell() >= 1024 * 1024:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
    yield out.getvalue()


class IterStream(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (what upload APIs want)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            try:
                self._left = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._left))
        buffer[:size] = self._left[:size]
        self._left = self._left[size:]
        return size


# --- backup ----------------------------------------------------------------------------


@contextlib.contextmanager
def _snapshot(db: Database[dict[str, Any]]) -> Iterator[ClientSession | None]:
    """A snapshot session where the server offers one (replica sets), so every
    collection is read at one instant; otherwise None (reads as they come)."""
    try:
        session = db.client.start_session(snapshot=True)
        db[OPERATIONS].find_one({}, session=session)
    except PyMongoError:
        yield None
        return
    with session:
        yield session


def collections(db: Database[dict[str, Any]]) -> list[str]:
    return sorted(n for n in db.list_collection_names() if n not in EXCLUDED)


def dump_lines(
    db: Database[dict[str, Any]], org: str | None, key_text: str, report: Report
) -> Iterator[bytes]:
    names = collections(db)
    with _snapshot(db) as session:
        yield encode(
            {
                "format": FORMAT,
                "org": org,
                "key_check": key_check(key_text),
                "collections": names,
                "consistent": session is not None,
            }
        )
        count: dict[str, int] = {}
        total = 0
        for name in names:
            cursor = db[name].find(scope_filter(name, org), session=session).sort("_id", 1)
            for doc in cursor:
                yield encode({"c": name, "d": doc})
                count[name] = count.get(name, 0) + 1
                total += 1
                if total % REPORT_EVERY == 0:
                    report({"documents": total, "collection": name})
        report({"documents": total, "collections": count})
        yield encode({"end": True, "documents": total, "collections": count})


# --- restore ---------------------------------------------------------------------------


def _lines(source: IO[bytes]) -> Iterator[dict[str, Any]]:
    source.seek(0)
    try:
        with gzip.GzipFile(fileobj=source, mode="rb") as gz:
            for line in gz:
                if line.strip():
                    yield decode(line)
    except (OSError, EOFError, ValueError) as e:
        raise BackupError(f"the backup file is damaged or not gzip: {e}") from e


def validate(source: IO[bytes], org: str | None, key_text: str) -> dict[str, Any]:
    """Read the whole file once; its header, or BackupError saying what is wrong."""
    lines = _lines(source)
    header = next(lines, None)
    if header is None:
        raise BackupError("the backup file is empty")
    check_header(header, org, key_text)
    org = header.get("org")  # the file's scope: an org backup replaces that org only
    total = 0
    for item in lines:
        if item.get("end"):
            if item.get("documents") != total:
                raise BackupError("the backup file is inconsistent: its count does not match")
            return {**header, "documents": total}
        name, doc = item.get("c"), item.get("d")
        if not isinstance(name, str) or name in EXCLUDED or not isinstance(doc, dict):
            raise BackupError("not a jobyard backup: a line is not a document")
        org_key = ORG_KEYS.get(name, "org")
        if org is not None and doc.get(org_key) != org:
            raise BackupError(f"the backup holds a {name} document of another org")
        total += 1
    raise BackupError("the backup file is truncated (no end marker): was the backup finished?")


def apply(
    db: Database[dict[str, Any]],
    source: IO[bytes],
    header: Mapping[str, Any],
    org: str | None,
    report: Report,
) -> dict[str, Any]:
    """Replace the documents in scope with the file's."""
    names = sorted({*header["collections"], *collections(db)} - EXCLUDED)
    for name in names:
        db[name].delete_many(scope_filter(name, org))
    total, done = int(header["documents"]), 0
    batch: list[dict[str, Any]] = []
    current = ""
    for item in _lines(source):
        if "c" not in item:
            continue  # header and end marker
        if item["c"] != current or len(batch) >= BATCH:
            if batch:
                db[current].insert_many(batch, ordered=True)
                done += len(batch)
                report({"documents": done, "total": total, "collection": current})
            batch, current = [], item["c"]
        batch.append(item["d"])
    if batch:
        db[current].insert_many(batch, ordered=True)
        done += len(batch)
    summary = {"documents": done, "total": total}
    report(summary)
    return summary


@guarded
class Backups:
    """Dump and restore over every collection of one database."""

    def __init__(self, db: Database[dict[str, Any]], key_text: str, reindex: Callable[[], None]):
        self._db = db
        self._key_text = key_text
        self._reindex = reindex

    def stream(self, org: str | None, report: Report) -> IO[bytes]:
        """A readable stream of the compressed dump of ``org`` (or everything), made as it
        is read; ``report`` gets the progress, the byte count last."""
        summary: dict[str, Any] = {}

        def keep(progress: Mapping[str, Any]) -> None:
            summary.update(progress)
            report(summary)

        def counted(chunks: Iterator[bytes]) -> Iterator[bytes]:
            sent = 0
            for chunk in chunks:
                sent += len(chunk)
                yield chunk
            summary["bytes"] = sent
            report(summary)

        lines = dump_lines(self._db, org, self._key_text, keep)
        return io.BufferedReader(IterStream(counted(gzip_chunks(lines))), 1024 * 1024)

    def restore(self, source: IO[bytes], org: str | None, report: Report) -> dict[str, Any]:
        """Validate all of ``source`` (a seekable file), then replace the documents of
        the file's scope with its own."""
        header = validate(source, org, self._key_text)
        summary = apply(self._db, source, header, header.get("org"), report)
        self._reindex()
        return summary
