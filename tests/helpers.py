"""Assertions and markers shared by the tests."""

from __future__ import annotations

import os
import signal
import socket
import sys
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

# The embedded default first; SecantusDB answers as MongoDB does where nx-27017 is lax.
MONGO_SERVERS = ("nx-27017", "secantus")

# Runs a test once per server (ids ``[nx-27017]``, ``[secantus]``): the store's tests, so
# nothing in store/ leans on a quirk of either, and one end-to-end lifecycle.
on_both_servers = pytest.mark.parametrize("mongo_server", MONGO_SERVERS, indirect=True)


def assert_error(response: Any, status: int) -> dict[str, Any]:
    """The one error shape, with the expected status."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    body = response.get_json()
    assert isinstance(body, dict), response.get_data(as_text=True)
    assert body["error_code"] == status
    assert isinstance(body["error_desc"], str) and body["error_desc"]
    assert set(body) <= {"error_desc", "error_code", "errors"}
    return body


def wait_for(check: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class DoubleHTTPServer(ThreadingHTTPServer):
    """The API doubles' server: a client that hangs up mid-answer (a watch or a log
    follow cut short at teardown) is normal for a real API server, not an error to print;
    anything else still is.

    Two defaults of ``http.server`` that no real API server has are changed: answers go
    out with TCP_NODELAY (Go's net/http sets it; without it, a request on a kept-alive
    connection waits ~40 ms for Nagle against the client's delayed ACK), and the listen
    backlog is 128, not 5 (the Lepton backend reads 16 logs at once; dropped connects
    are retried after a second)."""

    daemon_threads = True
    request_queue_size = 128

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def stored_job(store: Any, backend: str = "process", org: str = "acme") -> str:
    """A Pending train job of the reference workload, written through the store (no API,
    no dispatch): for tests that drive the engine themselves."""
    from jobyard.store.catalog import REFERENCE
    from jobyard.store.fingerprint import forced

    fields = {
        "kind": "experiment",
        "action": "train",
        "network_arch": "classification_pyt",
        "specs": REFERENCE.default_spec("train"),
        "timeout_minutes": 60,
    }
    return str(store.jobs.create(org, "u1", fields, backend, forced())["_id"])


def literal(command: list[str]) -> list[str]:
    """A command as a catalog template: braces doubled, so code in it stays as written
    (``backends.contract`` renders ``{spec_file}``-style placeholders in every command)."""
    return [part.replace("{", "{{").replace("}", "}}") for part in command]


def kill_runs(root: Any) -> int:
    """SIGKILL the process group of every process-backend run under ``root`` still alive
    (model servers never end by themselves): a test's runs must not outlive it."""
    killed = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"jobyard-launcher" in argv and any(str(root).encode() in a for a in argv):
            try:
                os.killpg(int(proc.name), signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
    return killed
