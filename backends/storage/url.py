"""Fetching a dataset from a public URL, without letting a user point the server at its
own network.

A URL may name loopback, a private range, a link-local address or the cloud metadata
service; fetching it would let any org user read what only the server can reach. So the
address is checked *after* DNS and *after* connecting (the socket's peer address, which
DNS rebinding cannot change), and again for every redirect. An operator can allow hosts
that are internal on purpose (``JOBYARD_FETCH_ALLOW_HOSTS``).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Collection
from typing import IO, Any
from urllib.parse import urlsplit

from jobyard.backends.storage.base import Progress
from jobyard.backends.storage.errors import StorageError, StorageRefused, StorageUnreachable

CHUNK = 256 * 1024
MAX_REDIRECTS = 5


class AddressNotAllowed(StorageRefused):
    """The URL resolves to an address jobyard does not fetch from."""


def address_allowed(address: str, host: str, allow_hosts: Collection[str]) -> bool:
    """Whether ``address`` (what ``host`` resolved to) may be fetched from: a public
    unicast address, or any address of a host the operator allowed."""
    if host.lower() in allow_hosts or address in allow_hosts:
        return True
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _check_peer(sock: socket.socket, host: str, allow_hosts: Collection[str]) -> None:
    address = str(sock.getpeername()[0])
    if not address_allowed(address, host, allow_hosts):
        sock.close()
        raise AddressNotAllowed(
            f"{host} resolves to {address}, a loopback, private, link-local or metadata "
            "address; jobyard does not fetch from there (an operator can allow the host "
            "with JOBYARD_FETCH_ALLOW_HOSTS)"
        )


def _connection_classes(
    allow: Collection[str],
) -> tuple[type[http.client.HTTPConnection], type[http.client.HTTPSConnection]]:
    class Checked(http.client.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            _check_peer(self.sock, self.host, allow)

    tls = ssl.create_default_context()

    class CheckedTLS(http.client.HTTPSConnection):
        def connect(self) -> None:
            # TCP first, the peer checked, and only then the TLS handshake
            http.client.HTTPConnection.connect(self)
            _check_peer(self.sock, self.host, allow)
            self.sock = tls.wrap_socket(self.sock, server_hostname=self.host)

    return Checked, CheckedTLS


def _opener(allow: Collection[str]) -> urllib.request.OpenerDirector:
    plain, tls = _connection_classes(allow)

    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(plain, req)

    class HTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(tls, req)

    class Redirects(urllib.request.HTTPRedirectHandler):
        max_redirections = MAX_REDIRECTS

        def redirect_request(
            self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
        ) -> urllib.request.Request | None:
            if urlsplit(newurl).scheme not in ("http", "https"):
                raise AddressNotAllowed(f"redirect to {newurl!r}: only http(s) is followed")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    # Every hop (the first request and each redirect) connects through the checked classes;
    # no proxy, whose address would stand in for the one that must be checked.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), HTTP, HTTPS, Redirects)


def fetch(
    url: str,
    out: IO[bytes],
    allow_hosts: Collection[str],
    timeout: float,
    progress: Progress | None = None,
) -> int:
    """Copy ``url`` into ``out``; returns the bytes copied. StorageUnreachable is transient,
    other StorageErrors (refused address, HTTP 4xx) are not."""
    scheme = urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise StorageRefused(f"{url!r}: only http and https URLs are fetched")
    allow = frozenset(h.lower() for h in allow_hosts)
    try:
        with _opener(allow).open(url, timeout=timeout) as response:
            copied = 0
            while chunk := response.read1(CHUNK):  # what has arrived: progress as it comes
                out.write(chunk)
                copied += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            return copied
    except AddressNotAllowed:
        raise
    except urllib.error.HTTPError as e:
        if e.code >= 500:
            raise StorageUnreachable(f"{url}: HTTP {e.code}") from e
        raise StorageError(f"{url}: HTTP {e.code}") from e
    except urllib.error.URLError as e:
        raise StorageUnreachable(f"{url}: {e.reason}") from e
    except (TimeoutError, OSError, http.client.HTTPException) as e:
        raise StorageUnreachable(f"{url}: {e}") from e
