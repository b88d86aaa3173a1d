"""Datasets given by URL, staged by a real worker: only from hosts jobyard may reach, in
a task of their own that keeps the job's claim while it copies."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from importlib import resources

import pytest

from tests.helpers import DoubleHTTPServer
from tests.integration.test_engine import train, until_status

pytestmark = pytest.mark.integration
ROWS = 300
PIECES = 12


def _digits() -> bytes:
    data = resources.files("jobyard.workloads").joinpath("data", "digits.csv.gz").read_bytes()
    lines = gzip.decompress(data).decode().splitlines(keepends=True)[:ROWS]
    return gzip.compress("".join(lines).encode())


class _Slow(BaseHTTPRequestHandler):
    """Serves the digits subset in pieces, ``pause`` seconds apart."""

    body = b""
    pause = 0.0
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        step = len(self.body) // PIECES + 1
        for start in range(0, len(self.body), step):
            self.wfile.write(self.body[start : start + step])
            self.wfile.flush()
            time.sleep(self.pause)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Slow]]]:
    _Slow.body, _Slow.pause, _Slow.hits = _digits(), 0.0, []
    httpd = DoubleHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/digits.csv.gz", _Slow
    httpd.shutdown()
    httpd.server_close()


def test_a_dataset_url_on_an_internal_address_fails_the_job_and_is_never_requested(
    login, worker, server
):
    url, handler = server
    s = login()
    worker()
    job = until_status(s, train(s, epochs=1, train_dataset_uris=[url]), "Error", timeout=60)
    message = job["job_details"]["detailed_status"]["message"]
    assert "127.0.0.1, a loopback, private, link-local or metadata address" in message
    assert "JOBYARD_FETCH_ALLOW_HOSTS" in message
    assert handler.hits == []


def test_a_slow_copy_is_staged_once_while_its_claim_is_renewed(login, worker, server):
    """The copy outlasts the dispatch lease (3 s here) twice over. Were the claim not
    renewed, the tick would dispatch the job again every second and, with only two
    dispatch attempts allowed, end it Error; a second copy would request the file again."""
    url, handler = server
    handler.pause = 0.5  # 12 pieces: about 6 s
    s = login()
    worker(JOBYARD_FETCH_ALLOW_HOSTS="127.0.0.1", JOBYARD_DISPATCH_ATTEMPTS="2")
    job_id = train(s, epochs=1, train_dataset_uris=[url])
    done = until_status(s, job_id, "Done", timeout=90)
    assert handler.hits == ["/digits.csv.gz"]
    assert done["job_details"]["transfer"]["direction"] in ("download", "upload")
    log = s.call("GET", f"jobs/{job_id}:logs").data.decode()
    assert f"datasets/train-0/digits.csv.gz ({ROWS} rows)" in log, log[:2000]
