"""A small keep-alive HTTP client (stdlib only) and a logged-in API session."""

from __future__ import annotations

import http.client
import json
import threading
import time
from typing import Any

from bench.servers import Bench
from jobyard.store.catalog import REFERENCE


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


def train_body(name: str, specs: dict[str, object], **extra: object) -> dict[str, object]:
    """A train job of the reference workload, as the bench POSTs it."""
    return {
        "kind": "experiment",
        "network_arch": REFERENCE.network_arch,
        "base_experiment_ids": [REFERENCE.id],  # the bench's own entries share its network
        "action": "train",
        "name": name,
        "specs": specs,
        **extra,
    }


def wait_done(api: Api, job_ids: list[str], timeout: float = 1800) -> None:
    """Every job Done; RuntimeError at the first that ended otherwise, or at ``timeout``."""
    deadline = time.monotonic() + timeout
    waiting = set(job_ids)
    while waiting:
        for job_id in list(waiting):
            status, job = api.call("GET", api.org_path(f"jobs/{job_id}"))
            if status != 200 or job["status"] in ("Error", "Canceled"):
                raise RuntimeError(f"job {job_id}: {status} {job}")
            if job["status"] == "Done":
                waiting.discard(job_id)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(waiting)} jobs not Done in {timeout} s")
        time.sleep(0.1)
