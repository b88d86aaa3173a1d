"""A small keep-alive HTTP client (stdlib only) and a logged-in API session."""

from __future__ import annotations

import http.client
import json
import threading
from typing import Any

from bench.servers import Bench


class Api:
    """One keep-alive connection per thread to the bench's API, with a token."""

    def __init__(self, host: str, port: int, org: str, token: str = "") -> None:
        self.host, self.port, self.org = host, port, org
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self._local = threading.local()
        self._opened: list[http.client.HTTPConnection] = []  # every thread's, for close()

    def _conn(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self._local.conn = conn
            self._opened.append(conn)
        return conn

    def close(self) -> None:
        """Close the connections of every thread that called (they outlive the threads)."""
        for conn in self._opened:
            conn.close()
        self._opened.clear()

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            conn = self._conn()
            try:
                conn.request(method, path, body=data, headers=self.headers)
                response = conn.getresponse()
                raw = response.read()
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
                continue
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                self._local.conn = None
            return response.status, json.loads(raw) if raw else None
        raise AssertionError("unreachable")

    def org_path(self, path: str) -> str:
        return f"/api/v2/orgs/{self.org}/{path.lstrip('/')}"


def login(bench: Bench, org: str = "bench") -> Api:
    """An admin of ``org`` with a fresh key, logged in through ``POST /login``."""
    account = bench.store.accounts.ensure_user(org, "bench", f"bench@{org}.test", is_admin=True)
    key = bench.store.accounts.create_key(account)
    s = bench.settings
    anonymous = Api(s.host, s.port, org)
    status, body = anonymous.call("POST", "/api/v2/login", {"ngc_key": key, "ngc_org_name": org})
    anonymous.close()
    if status != 200:
        raise RuntimeError(f"login failed: {status} {body}")
    return Api(s.host, s.port, org, body["token"])
