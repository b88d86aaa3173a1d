"""Dataset URLs are fetched only from where they may be: a server on 127.0.0.1 stands for
everything internal a user could point the workers at."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from jobyard.backends.storage.url import AddressNotAllowed, fetch
from tests.helpers import DoubleHTTPServer

BODY = b"secret from the internal network\n"


class _Internal(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).hits.append(self.path)
        if self.path.startswith("/redirect"):
            target = self.path.split("to=", 1)[1]
            self.send_response(302)
            self.send_header("Location", target)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def internal() -> Iterator[int]:
    _Internal.hits = []
    server = DoubleHTTPServer(("127.0.0.1", 0), _Internal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_loopback_url_is_refused_and_never_requested(internal):
    out = io.BytesIO()
    with pytest.raises(AddressNotAllowed, match="127.0.0.1, a loopback, private"):
        fetch(f"http://127.0.0.1:{internal}/data.csv", out, (), timeout=5)
    assert _Internal.hits == [] and out.getvalue() == b""


def test_a_name_that_resolves_to_loopback_is_refused(internal):
    with pytest.raises(AddressNotAllowed):
        fetch(f"http://localhost:{internal}/data.csv", io.BytesIO(), (), timeout=5)
    assert _Internal.hits == []


def test_an_allowed_host_is_fetched(internal):
    out = io.BytesIO()
    size = fetch(f"http://127.0.0.1:{internal}/data.csv", out, ("127.0.0.1",), timeout=5)
    assert out.getvalue() == BODY and size == len(BODY)


def test_a_redirect_to_an_internal_address_is_checked_again(internal):
    start = f"http://localhost:{internal}/redirect?to=http://127.0.0.1:{internal}/data.csv"
    with pytest.raises(AddressNotAllowed, match="127.0.0.1"):
        fetch(start, io.BytesIO(), ("localhost",), timeout=5)
    assert [h.split("?")[0] for h in _Internal.hits] == ["/redirect"]  # the target never


def test_a_redirect_to_another_scheme_is_not_followed(internal):
    start = f"http://127.0.0.1:{internal}/redirect?to=ftp://127.0.0.1/etc/passwd"
    with pytest.raises(AddressNotAllowed, match="only http"):
        fetch(start, io.BytesIO(), ("127.0.0.1",), timeout=5)
