"""The servers a bench run needs: its own redis-server and nx-27017 (or the
ones ``JOBYARD_REDIS_URL`` / ``JOBYARD_MONGO_URI`` point at), the real API
(gunicorn) and workers as child processes, and their memory."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from bench import experiments
from jobyard import embedded
from jobyard.schemas.settings import Settings
from jobyard.store import Store, connect
from jobyard.store.crypto import Cipher

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Proc:
    """A child started in its own session: its process group is everything it forked."""

    name: str
    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 20) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait()


@dataclass
class Bench:
    """Settings, store and children of one bench run."""

    settings: Settings
    store: Store
    redis: redis.Redis
    work: Path
    servers: list[embedded.Child] = field(default_factory=list)
    children: list[Proc] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
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
                "JOBYARD_HOST": s.host,
                "JOBYARD_PORT": str(s.port),
                "JOBYARD_LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(ROOT),
            }
        )
        env.update(extra)
        return env

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        log = open(self.work / f"{name}.log", "ab")  # the child keeps its own descriptor
        popen = subprocess.Popen(
            [sys.executable, *argv],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        proc = Proc(name, popen)
        self.children.append(proc)
        return proc

    def start_api(self) -> Proc:
        proc = self.start("api", ["-m", "bench.serve", "api"], self.env())
        url = f"http://{self.settings.host}:{self.settings.port}/api/v2/health/readiness"

        def ready() -> bool:
            import urllib.request

            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)

        embedded.wait_until(ready, 60, "the API", proc.popen)
        return proc

    def start_worker(self, beat: bool, interval: float = 0.2, concurrency: int = 2) -> Proc:
        argv = ["-m", "bench.serve", "worker", "--concurrency", str(concurrency)]
        if beat:
            argv.append("--beat")
        env = self.worker_env(
            interval,
            # INFO: Celery logs each task's duration, which the scale phase reads
            JOBYARD_LOG_LEVEL="WARNING" if beat else "INFO",
        )
        proc = self.start("worker-beat" if beat else "worker", argv, env)
        wait_for_celery(self.redis, proc)
        return proc

    def worker_env(self, interval: float = 0.2, **extra: str) -> dict[str, str]:
        """A worker's or beat's environment: a fast tick, redispatch after 5 s."""
        return self.env(
            JOBYARD_RECONCILE_INTERVAL_SECONDS=str(interval),
            JOBYARD_REDISPATCH_AFTER_SECONDS="5",
            **extra,
        )

    def stop_child(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.children:
            self.children.remove(proc)

    def close(self) -> None:
        for proc in reversed(self.children):
            proc.stop()
        self.children.clear()
        kill_runs(self.settings.runs_dir)
        with contextlib.suppress(Exception):
            self.store.db.client.drop_database(self.settings.mongo_db)
            self.store.db.client.close()
        if not any(child.name == "redis" for child in self.servers):
            self._forget_redis_keys()  # an external Redis: remove only what the bench made
        for child in reversed(self.servers):
            child.stop()

    def _forget_redis_keys(self) -> None:
        from bench import rawcelery
        from jobyard.workers.celery_app import QUEUES

        with contextlib.suppress(Exception):
            keys = [*QUEUES, rawcelery.QUEUE, "bench_post"]
            keys += [k.decode() for k in self.redis.scan_iter("bench:*")]
            keys += [k.decode() for k in self.redis.scan_iter("jobyard:lock:*")]
            self.redis.delete(*keys)


def wait_for_celery(client: redis.Redis, proc: Proc, timeout: float = 60) -> None:
    """Until a Celery worker of this group has its pool up (its children exist)."""

    def pool_up() -> bool:
        return len(group_pids(proc.pid)) >= 2

    embedded.wait_until(pool_up, timeout, proc.name, proc.popen)
    time.sleep(1.0)  # the consumer connects right after the pool forks


@contextlib.contextmanager
def bench_servers(work: Path) -> Iterator[Bench]:
    """Start (or reuse, from JOBYARD_* env) Redis and MongoDB; everything is
    stopped and the bench database dropped on the way out."""
    base = Settings.from_env()
    servers: list[embedded.Child] = []
    try:
        mongo_uri, redis_url = base.mongo_uri, base.redis_url
        if mongo_uri is None:
            servers.append(embedded.start_mongo(work / "mongo"))
            mongo_uri = servers[-1].url
        if redis_url is None:
            servers.append(embedded.start_redis(work / "redis", persist=False))
            redis_url = servers[-1].url
        settings = Settings(
            data_dir=work / "data",
            mongo_uri=mongo_uri,
            mongo_db=f"bench_{uuid.uuid4().hex[:10]}",
            redis_url=redis_url,
            jwt_secret="bench-" + uuid.uuid4().hex * 2,
            encryption_key=Cipher.generate_key(),
            port=embedded.free_port(),
            log_level="WARNING",
        )
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        assert settings.encryption_key
        store = connect(mongo_uri, settings.mongo_db, Cipher(settings.encryption_key))
        store.ensure_indexes()
        experiments.register(store)
        bench = Bench(settings, store, redis.Redis.from_url(redis_url), work, servers)
    except BaseException:
        for child in reversed(servers):
            child.stop()
        raise
    try:
        yield bench
    finally:
        bench.close()


# --- processes and memory -------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def process_groups() -> dict[int, list[int]]:
    """Live (non-zombie) processes by process group, from one pass over /proc."""
    groups: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields and fields[0] != "Z":
                groups.setdefault(int(fields[2]), []).append(int(entry))
    return groups


def group_pids(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (detached launchers are not in it)."""
    return sorted(process_groups().get(pgid, []))


def memory(pgid: int, groups: dict[int, list[int]] | None = None) -> dict[str, Any]:
    """RSS and PSS (MB) summed over a process group, with its process and thread counts."""
    rss = pss = threads = 0
    pids = sorted((groups if groups is not None else process_groups()).get(pgid, []))
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
            threads += len(os.listdir(f"/proc/{pid}/task"))
    return {"rss_mb": rss / 1024, "pss_mb": pss / 1024, "processes": len(pids), "threads": threads}


def pids_under(directory: Path) -> list[int]:
    """Processes whose command line names ``directory`` (launchers of our runs)."""
    needle = str(directory).encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            with contextlib.suppress(OSError):
                if needle in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
    return found


def kill_runs(runs_dir: Path) -> int:
    """SIGKILL the process group of every launcher started under ``runs_dir``
    (each leads its own group: the workload dies with it). Returns groups killed."""
    killed = 0
    for pid in pids_under(runs_dir):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
            killed += 1
    return killed
