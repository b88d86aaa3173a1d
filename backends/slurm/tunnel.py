"""Reach a model server on a compute node through the login node, as ``ssh -L`` would: a
port on this machine's loopback whose connections paramiko forwards (``direct-tcpip``)
over an SSH connection to the login node, host key checked like every other.

Compute nodes are rarely reachable from where jobyard runs; the login node is. One tunnel
per server, kept per process and shared by the API's requests and the worker's health
checks, so a request costs no SSH handshake; a tunnel unused for ``IDLE_SECONDS`` is
closed the next time one is asked for.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from urllib.parse import urlsplit

import paramiko

from jobyard.backends.errors import BackendError, SubmitRejected
from jobyard.backends.slurm.ssh import SshRunner

logger = logging.getLogger(__name__)
IDLE_SECONDS = 600.0
CHUNK = 65536


class Tunnel:
    """A loopback listener; each connection to it becomes one channel to the target."""

    def __init__(self, runner: SshRunner, host: str, port: int) -> None:
        self._runner, self.host, self.port = runner, host, port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.local_port = int(self._listener.getsockname()[1])
        self.last_used = time.monotonic()
        self.closed = False
        threading.Thread(target=self._accept, name=f"tunnel-{host}:{port}", daemon=True).start()

    def close(self) -> None:
        self.closed = True
        self._listener.close()
        self._runner.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._forward, args=(conn,), daemon=True).start()

    def _forward(self, conn: socket.socket) -> None:
        with conn:
            try:
                channel = self._runner.open_forward(self.host, self.port)
            except BackendError as e:  # the caller sees its connection closed: a 502
                logger.info("tunnel to %s:%s: %s", self.host, self.port, e)
                return
            with channel:
                _pump(conn, channel)


def _pump(conn: socket.socket, channel: paramiko.Channel) -> None:
    """Copy bytes both ways until either side closes."""
    while True:
        readable, _, _ = select.select([conn.fileno(), channel.fileno()], [], [], IDLE_SECONDS)
        if not readable:
            return
        for source, sink in ((conn, channel), (channel, conn)):
            if source.fileno() in readable:
                data = source.recv(CHUNK)
                if not data:
                    return
                sink.sendall(data)


_lock = threading.Lock()
_tunnels: dict[tuple[str, ...], Tunnel] = {}


def local_url(runner: SshRunner, url: str) -> str:
    """``url`` (a server on the cluster's network) as this process reaches it: the
    loopback end of a tunnel over ``runner``'s login nodes, opened on first use."""
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise SubmitRejected(f"model server address {url!r} names no host and port")
    key = (*runner.identity, parts.hostname, str(parts.port))
    now = time.monotonic()
    with _lock:
        for stale in [k for k, t in _tunnels.items() if now - t.last_used > IDLE_SECONDS]:
            _tunnels.pop(stale).close()
        tunnel = _tunnels.get(key)
        if tunnel is None or tunnel.closed:
            tunnel = _tunnels[key] = Tunnel(runner.clone(), parts.hostname, parts.port)
        tunnel.last_used = now
    return f"{parts.scheme}://127.0.0.1:{tunnel.local_port}{parts.path}"


def close_all() -> None:
    with _lock:
        for tunnel in _tunnels.values():
            tunnel.close()
        _tunnels.clear()
