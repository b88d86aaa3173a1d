"""gunicorn's own refusals in jobyard's error shape.

gunicorn answers some requests before the app sees them: a request line over
``limit_request_line`` (414), headers over their limits (431), a line that is not
HTTP (400). Its stock worker writes those as an HTML page; ``JsonErrorWorker`` writes
the same status as ``{"error_desc", "error_code"}`` JSON, so a client reads one error
shape whoever refused it. What is logged, and how, stays as gunicorn's
``Worker.handle_error`` does it.
"""

from __future__ import annotations

import json
import ssl
from datetime import datetime
from http import HTTPStatus
from typing import Any

from gunicorn import util
from gunicorn.http import errors
from gunicorn.http.wsgi import Response, default_environ
from gunicorn.workers.gthread import ThreadWorker

# The status gunicorn gives each client error it raises (Worker.handle_error); any other
# parse error is a 400.
_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (errors.LimitRequestLine, 414),
    (errors.LimitRequestHeaders, 431),
    (errors.ExpectationFailed, 417),
    (errors.UnsupportedTransferCoding, 501),
    (errors.ConfigurationProblem, 500),
    (errors.ForbiddenProxyRequest, 403),
    (ssl.SSLError, 403),
)
# A header the app tried to send is the app's fault, not the client's.
_APP_FAULTS = (errors.InvalidResponseHeader, errors.InvalidResponseHeaderName)
SERVER_FAULT = "internal error; the server log has the details"


def client_error_status(exc: BaseException) -> int | None:
    """The status of a request gunicorn refused itself; None when the fault is ours."""
    if isinstance(exc, _APP_FAULTS):
        return None
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 400 if isinstance(exc, errors.ParseException) else None


def error_bytes(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 response carrying the error shape; the connection closes after it."""
    body = json.dumps({"error_desc": message, "error_code": status}).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class JsonErrorWorker(ThreadWorker):
    """gunicorn's gthread worker, answering its own errors with the error shape."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        started = datetime.now()
        addr = addr or ("", -1)  # a unix socket has no address
        status = client_error_status(exc)
        if status is not None:
            message = f"{HTTPStatus(status).phrase}: {exc}"
            self.log.warning("Invalid request from ip=%s: %s", addr[0], exc)
        else:
            what = " ".join(str(getattr(req, a)) for a in ("method", "uri") if hasattr(req, a))
            self.log.exception("Error handling request %s", what or "(no URI read)")
            status, message = 500, SERVER_FAULT
        data = error_bytes(status, message)
        if req is not None:
            environ = default_environ(req, client, self.cfg)
            environ["REMOTE_ADDR"] = addr[0]
            environ["REMOTE_PORT"] = str(addr[1])
            response = Response(req, client, self.cfg)
            response.status = f"{status} {HTTPStatus(status).phrase}"
            response.response_length = len(data)
            self.log.access(response, req, environ, datetime.now() - started)
        try:
            util.write_nonblock(client, data)
        except Exception:  # the client is gone: nothing left to tell it
            self.log.debug("Failed to send error message.")
