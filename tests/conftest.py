"""Fixtures that start real servers on free loopback ports.

One nx-27017 (MongoDB wire protocol) and one redis-server serve the whole
session; each test gets its own database so tests stay independent. Tests
marked ``helpers.on_both_servers`` run once on nx-27017 and once on
SecantusDB (``tests/secantus.py``), started the first time one needs it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from jobyard import embedded
from jobyard.api import create_app
from jobyard.schemas.settings import Settings
from jobyard.store import Store, connect
from jobyard.store.crypto import Cipher
from tests import secantus
from tests.helpers import MONGO_SERVERS

ENCRYPTION_KEY = Cipher.generate_key()

# The SLURM cluster is session-scoped and shared by tests/slurm and tests/contract: one
# plugin defines it, so that a session running both starts one cluster, not two.
pytest_plugins = ["tests.slurm.cluster", "tests.tao.catalog"]


@pytest.fixture(scope="session")
def nx_27017_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    child = embedded.start_mongo(tmp_path_factory.mktemp("mongo"))
    yield child.url
    child.stop()


@pytest.fixture(scope="session")
def secantus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    child = secantus.start(secantus.binary(), tmp_path_factory.mktemp("secantus"))
    yield child.url
    child.stop()


@pytest.fixture
def mongo_server(request: pytest.FixtureRequest) -> str:
    """The MongoDB-wire server under the test: nx-27017 unless the test is parametrised
    over both (``helpers.on_both_servers``)."""
    name: str = getattr(request, "param", MONGO_SERVERS[0])
    return name


@pytest.fixture
def mongo_uri(request: pytest.FixtureRequest, mongo_server: str) -> str:
    fixture = {"nx-27017": "nx_27017_uri", "secantus": "secantus_uri"}[mongo_server]
    uri: str = request.getfixturevalue(fixture)
    return uri


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    child = embedded.start_redis(tmp_path_factory.mktemp("redis"), persist=False)
    yield child.url
    child.stop()


@pytest.fixture
def settings(tmp_path: Path, mongo_uri: str, redis_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        mongo_uri=mongo_uri,
        mongo_db=f"t_{uuid.uuid4().hex[:12]}",
        redis_url=redis_url,
        jwt_secret="test-secret-" + "x" * 32,
        encryption_key=ENCRYPTION_KEY,
        max_body_bytes=64 * 1024,
        # fake AWS credentials in API tests; tests/storage turns the check on
        workspace_storage_check=False,
        # one Redis serves the whole session: bad logins of other tests must not add up
        login_failures_per_client=1_000_000,
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    assert settings.mongo_uri and settings.encryption_key
    s = connect(settings.mongo_uri, settings.mongo_db, Cipher(settings.encryption_key))
    s.ensure_indexes()
    yield s
    s.db.client.drop_database(settings.mongo_db)
    s.db.client.close()


@pytest.fixture
def app(settings: Settings, store: Store) -> Flask:
    return create_app(settings, store=store)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Session:
    """A logged-in API user: ``org``, auth ``headers`` and a ``url`` helper."""

    def __init__(self, client: FlaskClient, org: str, token: str, key: str) -> None:
        self.client = client
        self.org = org
        self.key = key
        self.headers = {"Authorization": f"Bearer {token}"}

    def url(self, path: str) -> str:
        return f"/api/v2/orgs/{self.org}/{path.lstrip('/')}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.open(self.url(path), method=method, headers=self.headers, **kwargs)


@pytest.fixture
def login(client: FlaskClient, store: Store) -> Any:
    return logins(client, store)


def logins(client: FlaskClient, store: Store) -> Any:
    """``login(org, admin, user)``: a new user of ``org`` logged in through the API (the
    fixture's, and the bench's pools phase on its in-process app)."""

    def _login(org: str = "acme", admin: bool = False, user: str = "alice") -> Session:
        account = store.accounts.ensure_user(org, user, f"{user}@{org}.test", is_admin=admin)
        key = store.accounts.create_key(account)
        response = client.post("/api/v2/login", json={"ngc_key": key, "ngc_org_name": org})
        assert response.status_code == 200, response.json
        return Session(client, org, response.json["token"], key)

    return _login


class Worker:
    """A real ``jobyard worker --beat`` process on the test's database."""

    def __init__(self, settings: Settings, log: Path, extra_env: dict[str, str]) -> None:
        self.settings = settings
        self.log = log
        self.extra_env = extra_env
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
        env.update(
            {
                "JOBYARD_DATA_DIR": str(s.data_dir),
                "JOBYARD_MONGO_URI": str(s.mongo_uri),
                "JOBYARD_MONGO_DB": s.mongo_db,
                "JOBYARD_REDIS_URL": str(s.redis_url),
                "JOBYARD_JWT_SECRET": str(s.jwt_secret),
                "JOBYARD_ENCRYPTION_KEY": str(s.encryption_key),
                "JOBYARD_RECONCILE_INTERVAL_SECONDS": "0.2",
                "JOBYARD_REDISPATCH_AFTER_SECONDS": "1",
                "JOBYARD_DISPATCH_LEASE_SECONDS": "3",
                "JOBYARD_GRACE_PERIOD_SECONDS": "3",
                "JOBYARD_LOG_LEVEL": "INFO",
                **self.extra_env,
            }
        )
        return env

    def start(self) -> Worker:
        out = open(self.log, "ab")  # the child keeps its own descriptor
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jobyard.cli", "worker", "--beat", "--concurrency", "2"],
            env=self.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        return self

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children) at once."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def worker(settings: Settings, redis_url: str, tmp_path: Path) -> Iterator[Any]:
    """Factory: ``worker()`` starts a worker (with extra env), stopped at teardown."""
    import redis

    redis.Redis.from_url(redis_url).flushall()  # messages of earlier tests' databases
    started: list[Worker] = []

    def _start(**extra_env: str) -> Worker:
        w = Worker(settings, tmp_path / f"worker{len(started)}.log", extra_env).start()
        started.append(w)
        return w

    yield _start
    for w in started:
        w.stop()
