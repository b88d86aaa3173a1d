"""The real ``jobyard api`` (gunicorn): what gunicorn refuses before the app sees it
(a request line over 4094 bytes, headers too large, a line that is not HTTP) comes in
the same JSON error shape as the app's own errors, and a long query value is the app's
400 well before gunicorn's limit."""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from jobyard import embedded
from jobyard.store import connect
from jobyard.store.crypto import Cipher
from tests.conftest import ENCRYPTION_KEY

pytestmark = pytest.mark.integration

REQUEST_LINE_LIMIT = 4094  # gunicorn's default limit_request_line


@dataclass
class Api:
    host: str
    port: int
    log: Path
    token: str

    def request(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def raw(self, data: bytes) -> bytes:
        with socket.create_connection((self.host, self.port), timeout=10) as sock:
            sock.sendall(data)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def _key(mongo_uri: str, db: str) -> str:
    store = connect(mongo_uri, db, Cipher(ENCRYPTION_KEY))
    store.ensure_indexes()
    try:
        return store.accounts.create_key(store.accounts.ensure_user("acme", "alice"))
    finally:
        store.db.client.close()


def _login(base: str, key: str) -> str:
    body = json.dumps({"ngc_key": key, "ngc_org_name": "acme"}).encode()
    with urllib.request.urlopen(f"{base}/login", body, timeout=10) as response:
        token: str = json.load(response)["token"]
    return token


def _ready(base: str) -> bool:
    with urllib.request.urlopen(f"{base}/health/readiness", timeout=2) as response:
        return bool(response.status == 200)


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, nx_27017_uri: str, redis_url: str
) -> Iterator[Api]:
    mongo_uri = nx_27017_uri  # module-scoped: the session's server, not a per-test choice
    data_dir = tmp_path_factory.mktemp("api")
    db = f"t_{uuid.uuid4().hex[:12]}"
    port = embedded.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
    env.update(
        {
            "JOBYARD_DATA_DIR": str(data_dir),
            "JOBYARD_MONGO_URI": mongo_uri,
            "JOBYARD_MONGO_DB": db,
            "JOBYARD_REDIS_URL": redis_url,
            "JOBYARD_JWT_SECRET": "server-test-" + "z" * 32,
            "JOBYARD_ENCRYPTION_KEY": ENCRYPTION_KEY,
            "JOBYARD_API_WORKERS": "1",
            "JOBYARD_API_THREADS": "2",
        }
    )
    child = embedded.start_jobyard(
        ["api", "--host", "127.0.0.1", "--port", str(port)], env, data_dir, "api"
    )
    try:
        base = f"http://127.0.0.1:{port}/api/v2"
        embedded.wait_until(lambda: _ready(base), 60, "jobyard api", child.proc)
        yield Api("127.0.0.1", port, data_dir / "api.log", _login(base, _key(mongo_uri, db)))
    finally:
        child.stop()
        with MongoClient(mongo_uri) as client:
            client.drop_database(db)


def _error_shape(status: int, headers: Any, body: bytes, expected: int) -> dict[str, Any]:
    assert status == expected, body
    assert headers["Content-Type"] == "application/json"
    error: dict[str, Any] = json.loads(body)
    assert error["error_code"] == expected
    assert isinstance(error["error_desc"], str) and error["error_desc"]
    assert set(error) <= {"error_desc", "error_code", "errors"}
    return error


def test_a_request_line_over_gunicorns_limit_is_414_in_the_error_shape(api):
    path = "/api/v2/orgs/acme/jobs?name=" + "x" * REQUEST_LINE_LIMIT
    error = _error_shape(*api.request(path), 414)
    assert "URI Too Long" in error["error_desc"]
    assert "Invalid request from ip=127.0.0.1" in api.log.read_text()  # gunicorn's own log


def test_headers_over_gunicorns_limit_are_431_in_the_error_shape(api):
    status, headers, body = api.request("/api/v2/health/liveness", {"X-Big": "y" * 10_000})
    _error_shape(status, headers, body, 431)


def test_a_line_that_is_not_http_is_400_in_the_error_shape(api):
    answer = api.raw(b"NOT HTTP AT ALL\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 400 "), answer
    assert "Content-Type: application/json" in lines
    assert json.loads(body)["error_code"] == 400


def test_a_long_name_filter_is_the_apps_400_naming_it(api):
    auth = {"Authorization": f"Bearer {api.token}"}
    status, headers, body = api.request("/api/v2/orgs/acme/jobs?name=" + "x" * 3000, auth)
    assert "name" in _error_shape(status, headers, body, 400)["errors"]
    status, _, body = api.request("/api/v2/orgs/acme/jobs?name=" + "x" * 500, auth)
    assert status == 200, body


def test_the_dashboard_files_are_public_and_locked_down(client):
    with client.get("/ui/") as page:
        assert page.status_code == 200, page.data  # ./dev.sh builds it before the tests
        assert b'id="page"' in page.data and b"<script>" not in page.data
        policy = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
        assert page.headers["X-Frame-Options"] == "DENY"
    with client.get("/ui/assets/nope.js") as missing:
        assert missing.status_code == 404 and missing.json["error_code"] == 404
