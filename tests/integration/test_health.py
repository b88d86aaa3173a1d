"""Readiness reflects MongoDB and Redis; liveness only the process."""

from __future__ import annotations

import pytest

from jobyard import embedded
from jobyard.api import create_app
from tests.helpers import assert_error

pytestmark = pytest.mark.integration


def test_readiness_is_ok_when_both_answer(client):
    body = client.get("/api/v2/health/readiness").json
    assert body == {"status": "ok", "checks": {"mongodb": "ok", "redis": "ok"}}


def test_readiness_is_503_naming_redis_when_redis_is_down(settings, store):
    dead = settings.replace(redis_url=f"redis://127.0.0.1:{embedded.free_port()}/0")
    client = create_app(dead, store=store).test_client()
    assert client.get("/api/v2/health/liveness").status_code == 200
    body = assert_error(client.get("/api/v2/health/readiness"), 503)
    assert "redis" in body["error_desc"] and body["errors"]["mongodb"] == "ok"
