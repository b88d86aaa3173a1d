"""The web dashboard's files under ``/ui/``: the page built from ``ui/`` (``npm run
build`` writes it into this package), served with a Content-Security-Policy that allows
nothing but this origin's scripts, styles and API.

The files are public, like the API docs: they hold no data. Everything the page shows it
fetches from the REST API with the user's token, under the same checks as any client."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

from jobyard.api.errors import ServiceUnavailable

BUILT = Path(__file__).parent / "ui"
POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)

blp = Blueprint("ui", __name__, url_prefix="/ui")


def _secured(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response


@blp.get("/")
def index() -> Response:
    if not (BUILT / "index.html").is_file():
        raise ServiceUnavailable(
            "the dashboard is not built: run ./dev.sh (or npm ci && npm run build in ui/)"
        )
    response = send_from_directory(BUILT, "index.html", max_age=0)
    return _secured(response)


@blp.get("/assets/<path:name>")
def asset(name: str) -> Response:
    # names carry a content hash, so a year of caching is safe
    return _secured(send_from_directory(BUILT / "assets", name, max_age=31_536_000))
