"""Which of gunicorn's errors are the client's (and their status), and the bytes sent."""

from __future__ import annotations

import json

import pytest
from gunicorn.http import errors

from jobyard.api.server import client_error_status, error_bytes


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (errors.LimitRequestLine(5000, 4094), 414),
        (errors.LimitRequestHeaders("too many"), 431),
        (errors.InvalidRequestLine("NOT HTTP"), 400),
        (errors.InvalidHeaderName("b@d"), 400),
        (errors.InvalidResponseHeader("X-App", "bad"), None),
        (RuntimeError("the app broke"), None),
    ],
    ids=["line", "headers", "request-line", "header-name", "app-header", "app"],
)
def test_client_errors_keep_gunicorns_status_and_faults_of_ours_are_none(exc, status):
    assert client_error_status(exc) == status


def test_the_error_is_a_whole_json_response_that_closes_the_connection():
    head, _, body = error_bytes(431, "Request Header Fields Too Large: x").partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "HTTP/1.1 431 Request Header Fields Too Large"
    assert {"Connection: close", "Content-Type: application/json"} <= set(lines)
    assert f"Content-Length: {len(body)}" in lines
    assert json.loads(body) == {
        "error_desc": "Request Header Fields Too Large: x",
        "error_code": 431,
    }
