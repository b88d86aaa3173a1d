"""Run commands and move files on a SLURM login node over SSH (paramiko), with failover.

Why it looks the way it does:

* Key authentication only, and host keys are checked against the known_hosts *text* the
  operator configured (``RejectPolicy``): nothing is read from or written to ``~/.ssh``, and an
  unknown or changed key is a refusal (``HostKeyRejected``), never a silent trust.
* Several login nodes may be configured. The last one that answered is tried first; when it
  is unreachable the others are tried in their configured order, and ``active_host`` says
  which one answered. All down is ``BackendUnavailable`` (the engine retries); a rejected host
  key or login is permanent and stops the search, since another host would hide the problem.
* One ``SSHClient`` per host is kept and reconnected when its transport died. A command is
  re-sent to another host only if it was never started: once sent, it may have run (sbatch
  is not idempotent here; the backend makes submit idempotent through ``squeue --name``).
* Every call has an I/O deadline; ``round_trips`` counts exec calls and SFTP batches so tests
  can check that polling many runs costs one round trip, not one per run.
"""

from __future__ import annotations

import hashlib
import io
import stat
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import IO, cast

import paramiko

from jobyard.backends.errors import BackendUnavailable, SubmitRejected

DEFAULT_PORT = 22
_KEY_CLASSES: tuple[type[paramiko.PKey], ...] = (
    paramiko.Ed25519Key,
    paramiko.ECDSAKey,
    paramiko.RSAKey,
)


class HostKeyRejected(SubmitRejected):
    """The host's key is not in the configured known_hosts, or differs from it."""


class LoginRejected(SubmitRejected):
    """The host refused our key (wrong user or key not authorized)."""


class CommandTimeout(BackendUnavailable):
    """A command did not finish within its timeout; it may still be running remotely."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, default_port: int = DEFAULT_PORT) -> Endpoint:
        """``host``, ``host:port`` or ``[v6addr]:port``."""
        text = text.strip()
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            return cls(host, int(rest[1:]) if rest.startswith(":") else default_port)
        if text.count(":") == 1:
            host, _, port = text.partition(":")
            return cls(host, int(port))
        return cls(text, default_port)

    def __str__(self) -> str:
        return self.host if self.port == DEFAULT_PORT else f"{self.host}:{self.port}"


def load_private_key(text: str, password: str | None = None) -> paramiko.PKey:
    """Any key type paramiko supports (ed25519, ECDSA, RSA), in OpenSSH or PEM form."""
    errors = []
    for key_class in _KEY_CLASSES:
        try:
            return key_class.from_private_key(io.StringIO(text), password)
        except (paramiko.SSHException, ValueError) as e:
            errors.append(f"{key_class.__name__}: {e}")
    raise SubmitRejected("private key not readable as " + "; ".join(errors))


def load_known_hosts(text: str) -> paramiko.HostKeys:
    """known_hosts text (plain or hashed host names) as paramiko ``HostKeys``."""
    keys = paramiko.HostKeys()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            entry = paramiko.hostkeys.HostKeyEntry.from_line(line, number)
        except paramiko.SSHException as e:
            raise SubmitRejected(f"known_hosts line {number} unreadable: {e}") from e
        if entry is None or entry.key is None:
            continue  # a key type paramiko does not know; OpenSSH would skip it too
        for name in entry.hostnames:
            keys.add(name, entry.key.get_name(), entry.key)
    return keys


class SshRunner:
    """Commands and SFTP on the first reachable of ``hosts``; safe to share between threads."""

    def __init__(
        self,
        hosts: Sequence[str],
        *,
        username: str,
        private_key: str,
        known_hosts: str,
        key_password: str | None = None,
        connect_timeout: float = 10.0,
        io_timeout: float = 30.0,
    ) -> None:
        if not hosts:
            raise SubmitRejected("no SSH host configured")
        self.endpoints = [Endpoint.parse(h) for h in hosts]
        self.username = username
        self._texts = (list(hosts), private_key, known_hosts, key_password)
        self._key = load_private_key(private_key, key_password)
        self._known_hosts = load_known_hosts(known_hosts)
        self.connect_timeout = connect_timeout
        self.io_timeout = io_timeout
        self.round_trips = 0
        self.active_host: str | None = None  # the host that answered last, as configured
        self._clients: dict[Endpoint, paramiko.SSHClient] = {}
        self._active: Endpoint | None = None
        self._lock = threading.Lock()

    # -- public calls ----------------------------------------------------------------

    def run(self, command: str, timeout: float | None = None) -> tuple[int, bytes, bytes]:
        """``(exit status, stdout, stderr)``; a non-zero status is returned, not raised."""
        limit = self.io_timeout if timeout is None else timeout
        for endpoint, client in self._connections():
            transport = client.get_transport()
            try:
                if transport is None:
                    raise paramiko.SSHException("no transport")
                channel = transport.open_session(timeout=limit)
            except (OSError, EOFError, paramiko.SSHException):
                self._drop(endpoint)  # never started: safe to try the next host
                continue
            self._count_round_trip()
            with channel:
                return _exec(channel, command, limit, str(endpoint))
        raise AssertionError("unreachable: _connections raises when all hosts fail")

    def open_forward(self, host: str, port: int) -> paramiko.Channel:
        """A channel to ``host:port`` as the login node reaches it (SSH ``direct-tcpip``,
        what ``ssh -L`` uses), over the same checked connection as everything else."""
        for endpoint, client in self._connections():
            transport = client.get_transport()
            try:
                if transport is None:
                    raise paramiko.SSHException("no transport")
                return transport.open_channel(
                    "direct-tcpip", (host, port), ("127.0.0.1", 0), timeout=self.connect_timeout
                )
            except paramiko.ChannelException as e:  # the login node could not connect there
                raise BackendUnavailable(f"{endpoint}: cannot reach {host}:{port}: {e}") from e
            except (OSError, EOFError, paramiko.SSHException):
                self._drop(endpoint)
        raise AssertionError("unreachable: _connections raises when all hosts fail")

    @property
    def identity(self) -> tuple[str, ...]:
        """Which cluster, account and credentials this runner logs in with, to share tunnels
        by: a runner with another key or known_hosts never rides this one's connection."""
        hosts, private_key, known_hosts, _ = self._texts
        secret = hashlib.sha256(f"{private_key}\0{known_hosts}".encode()).hexdigest()
        return (self.username, secret, *hosts)

    def clone(self) -> SshRunner:
        """A runner of its own to the same login nodes, for a caller that outlives this one."""
        hosts, private_key, known_hosts, key_password = self._texts
        return SshRunner(
            hosts,
            username=self.username,
            private_key=private_key,
            known_hosts=known_hosts,
            key_password=key_password,
            connect_timeout=self.connect_timeout,
            io_timeout=self.io_timeout,
        )

    def sftp_put_bytes(self, path: str, data: bytes) -> None:
        self.sftp_put_many({path: data})

    def sftp_put_many(self, files: Mapping[str, bytes]) -> None:
        """Write each file whole (temp name, then rename) in one SFTP session, readable by
        the cluster user only: a batch script and a spec file may hold the job's secrets."""
        with self._sftp() as (sftp, where):
            try:
                for path, data in files.items():
                    tmp = f"{path}.tmp-{time.monotonic_ns()}"
                    with sftp.open(tmp, "wb") as f:
                        f.chmod(0o600)
                        f.write(data)
                    sftp.posix_rename(tmp, path)
            except FileNotFoundError as e:
                raise SubmitRejected(f"{where}: cannot write {path}: {e}") from e
            except PermissionError as e:
                raise SubmitRejected(f"{where}: cannot write {path}: {e}") from e

    def sftp_read_from(self, path: str, offset: int, max_bytes: int) -> bytes:
        return self.sftp_read_many([(path, offset, max_bytes)])[0]

    def sftp_read_many(self, requests: Sequence[tuple[str, int, int]]) -> list[bytes]:
        """Bytes from ``offset``, at most ``max_bytes``, per file, in one SFTP session.

        A missing file reads as ``b""``: a run that has not started yet wrote nothing.
        """
        results: list[bytes] = []
        with self._sftp() as (sftp, _):
            for path, offset, max_bytes in requests:
                try:
                    with sftp.open(path, "rb") as f:
                        f.seek(offset)
                        results.append(f.read(max_bytes) if max_bytes > 0 else b"")
                except FileNotFoundError:
                    results.append(b"")
        return results

    def sftp_remove_many(self, paths: Sequence[str]) -> int:
        """Remove files in one SFTP session; those already gone are skipped."""
        removed = 0
        with self._sftp() as (sftp, _):
            for path in paths:
                try:
                    sftp.remove(path)
                    removed += 1
                except FileNotFoundError:
                    continue
        return removed

    def sftp_walk(self, root: str) -> list[tuple[str, int, float]]:
        """``(path relative to root, size, mtime)`` of every regular file under ``root``,
        in one SFTP session; a missing root is an empty list."""
        found: list[tuple[str, int, float]] = []
        with self._sftp() as (sftp, _):
            pending = [""]
            while pending:
                relative = pending.pop()
                here = f"{root.rstrip('/')}/{relative}" if relative else root
                try:
                    entries = sftp.listdir_attr(here)
                except FileNotFoundError:
                    continue
                for entry in entries:
                    path = f"{relative}/{entry.filename}" if relative else entry.filename
                    mode = entry.st_mode or 0
                    if stat.S_ISDIR(mode):
                        pending.append(path)
                    elif stat.S_ISREG(mode):
                        found.append((path, entry.st_size or 0, float(entry.st_mtime or 0)))
        return sorted(found)

    @contextmanager
    def sftp_open(self, path: str) -> Iterator[IO[bytes]]:
        """A remote file opened for streaming reads (prefetched), for downloads."""
        with self._sftp() as (sftp, _):
            try:
                remote = sftp.open(path, "rb")
            except FileNotFoundError as e:
                raise FileNotFoundError(f"{path}: no such file") from e
            with remote:
                remote.prefetch()
                yield cast(IO[bytes], remote)

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def __enter__(self) -> SshRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- connections -----------------------------------------------------------------

    @contextmanager
    def _sftp(self) -> Iterator[tuple[paramiko.SFTPClient, str]]:
        for endpoint, client in self._connections():
            try:
                sftp = client.open_sftp()
            except (OSError, EOFError, paramiko.SSHException):
                self._drop(endpoint)
                continue
            self._count_round_trip()
            channel = sftp.get_channel()
            if channel is not None:
                channel.settimeout(self.io_timeout)
            with sftp:
                try:
                    yield sftp, str(endpoint)
                except (TimeoutError, EOFError, paramiko.SSHException) as e:
                    self._drop(endpoint)
                    raise BackendUnavailable(f"{endpoint}: SFTP failed: {e}") from e
                except OSError as e:
                    if e.errno is None:  # a connection error, not an SFTP status
                        self._drop(endpoint)
                        raise BackendUnavailable(f"{endpoint}: SFTP failed: {e}") from e
                    raise
            return
        raise AssertionError("unreachable: _connections raises when all hosts fail")

    def _connections(self) -> Iterator[tuple[Endpoint, paramiko.SSHClient]]:
        """Live clients, sticky host first; raises BackendUnavailable once all are exhausted."""
        failures: list[str] = []
        for endpoint in self._order():
            try:
                client = self._client(endpoint)
            except (OSError, EOFError, paramiko.SSHException) as e:
                failures.append(f"{endpoint}: {e or type(e).__name__}")
                continue
            with self._lock:
                self._active = endpoint
                self.active_host = str(endpoint)
            yield endpoint, client
            failures.append(f"{endpoint}: connection lost")
        raise BackendUnavailable("no SSH host reachable: " + "; ".join(failures))

    def _order(self) -> list[Endpoint]:
        with self._lock:
            active = self._active
        rest = [e for e in self.endpoints if e != active]
        return [active, *rest] if active is not None else rest

    def _client(self, endpoint: Endpoint) -> paramiko.SSHClient:
        with self._lock:
            client = self._clients.get(endpoint)
            transport = client.get_transport() if client is not None else None
            if client is not None and transport is not None and transport.is_active():
                return client
            if client is not None:
                client.close()
                del self._clients[endpoint]
        client = self._connect(endpoint)
        with self._lock:
            old = self._clients.get(endpoint)
            if old is not None:
                old.close()
            self._clients[endpoint] = client
        return client

    def _connect(self, endpoint: Endpoint) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        host_keys = client.get_host_keys()
        for name, by_type in self._known_hosts.items():
            for key_type, key in by_type.items():
                host_keys.add(name, key_type, key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                endpoint.host,
                port=endpoint.port,
                username=self.username,
                pkey=self._key,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                channel_timeout=self.connect_timeout,
                look_for_keys=False,
                allow_agent=False,
            )
        except paramiko.BadHostKeyException as e:
            client.close()
            raise HostKeyRejected(
                f"host key of {endpoint} changed: got {e.key.get_name()} "
                f"{e.key.get_fingerprint().hex()}, known_hosts has a different key; refusing"
            ) from e
        except paramiko.AuthenticationException as e:
            client.close()
            raise LoginRejected(f"{endpoint} refused the key for user {self.username}") from e
        except paramiko.SSHException as e:
            client.close()
            if "not found in known_hosts" in str(e):
                raise HostKeyRejected(
                    f"host key of {endpoint} is not in the configured known_hosts; refusing"
                ) from e
            raise
        except BaseException:
            client.close()
            raise
        return client

    def _count_round_trip(self) -> None:
        with self._lock:
            self.round_trips += 1

    def _drop(self, endpoint: Endpoint) -> None:
        with self._lock:
            client = self._clients.pop(endpoint, None)
            if self._active == endpoint:
                self._active = None
        if client is not None:
            client.close()


def _exec(
    channel: paramiko.Channel, command: str, timeout: float, where: str
) -> tuple[int, bytes, bytes]:
    """Send ``command`` and collect both streams until exit, within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    channel.settimeout(timeout)
    try:
        channel.exec_command(command)
        out, err = io.BytesIO(), io.BytesIO()
        while True:
            busy = False
            while channel.recv_ready():
                out.write(channel.recv(65536))
                busy = True
            while channel.recv_stderr_ready():
                err.write(channel.recv_stderr(65536))
                busy = True
            if (
                channel.exit_status_ready()
                and not channel.recv_ready()
                and (not channel.recv_stderr_ready())
            ):
                break
            if time.monotonic() > deadline:
                raise CommandTimeout(f"{where}: command timed out after {timeout:g}s")
            if not busy:
                channel.status_event.wait(0.01)
        return channel.recv_exit_status(), out.getvalue(), err.getvalue()
    except (OSError, EOFError, paramiko.SSHException) as e:
        raise BackendUnavailable(f"{where}: command failed in transit: {e}") from e
