"""SecantusDB: the second MongoDB-wire server the store's tests run on.

nx-27017, the embedded default, is a lax double: it stores ``$set`` datetimes and
``$push``ed objects as strings, lets a ``find_one_and_update`` pass a unique index, matches
missing fields with ``$ne: None``, and keeps no transaction isolation. SecantusDB
(WiredTiger underneath) answers as MongoDB does on each of those, so a store test that
passes on both servers relies on a quirk of neither.

SecantusDB is GPL-2.0: ``./dev.sh test`` installs it into ``.venv-secantus`` (never into
jobyard's dependencies) and the tests only ever run it as a separate process.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from pymongo import MongoClient

from jobyard import embedded

ROOT = Path(__file__).parents[1]
VENV_BINARY = ROOT / ".venv-secantus" / "bin" / "secantusd-py"
BINARY_VARIABLE = "JY_SECANTUS_BIN"


def binary() -> str:
    """``secantusd-py`` as dev.sh exported it, else the one in .venv-secantus.

    Under ``./dev.sh test`` (and so in CI) the variable is always set, and dev.sh itself
    fails when it cannot install SecantusDB: a binary named there but missing fails the
    tests. Only a bare ``pytest`` on a machine without .venv-secantus skips, saying how to
    get it; ``-ra`` lists the skip in the summary.
    """
    named = os.environ.get(BINARY_VARIABLE)
    if named:
        if not os.access(named, os.X_OK):
            pytest.fail(f"{BINARY_VARIABLE}={named} is not an executable secantusd-py")
        return named
    if os.access(VENV_BINARY, os.X_OK):
        return str(VENV_BINARY)
    pytest.skip(
        f"SecantusDB is not installed: ./dev.sh test builds .venv-secantus "
        f"(secantus_server in dev.sh), or set {BINARY_VARIABLE} to a secantusd-py"
    )


def _ping(uri: str) -> bool:
    client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=300)
    with client:
        client.admin.command("ping")
    return True


def start(executable: str, directory: Path, timeout: float = 60) -> embedded.Child:
    """One SecantusDB on a free loopback port, storing under ``directory``; returns once it
    answers a ping (about 3 s). ``Child.stop`` sends SIGTERM, then kills it."""
    port = embedded.free_port()
    with open(directory / "secantus.log", "ab") as log:
        proc = subprocess.Popen(
            [
                executable,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--storage-path",
                str(directory / "data"),
                "--log-level",
                "WARNING",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    uri = f"mongodb://127.0.0.1:{port}/"
    try:
        embedded.wait_until(lambda: _ping(uri), timeout, "SecantusDB", proc)
    except embedded.EmbeddedError as e:
        embedded.Child("secantus", proc).stop()
        tail = (directory / "secantus.log").read_text(errors="replace")[-2000:]
        raise embedded.EmbeddedError(f"{e}; its log ends with:\n{tail}") from None
    return embedded.Child("secantus", proc, uri)
