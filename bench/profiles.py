"""pyinstrument profiles of the hot paths, written as text next to the results."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Profiler = Callable[[str], contextlib.AbstractContextManager[None]]


def profiler_for(directory: Path) -> Profiler | None:
    """A ``with profile(name):`` factory, or None when pyinstrument is missing."""
    try:
        from pyinstrument import Profiler as Pyinstrument
    except ImportError:
        return None
    directory.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def profile(name: str) -> Iterator[None]:
        profiler: Any = Pyinstrument(interval=0.0005)
        profiler.start()
        try:
            yield
        finally:
            profiler.stop()
            text = profiler.output_text(unicode=True, color=False, show_all=False)
            (directory / f"{name}.txt").write_text(text)

    return profile


def _client(bench: Any, org: str) -> tuple[Any, dict[str, str]]:
    """The Flask app in this process (the views gunicorn serves, without the
    HTTP server) and an admin token for ``org``."""
    from jobyard.api import create_app

    client = create_app(bench.settings, store=bench.store).test_client()
    account = bench.store.accounts.ensure_user(org, "bench", f"p@{org}.test", is_admin=True)
    key = bench.store.accounts.create_key(account)
    response = client.post("/api/v2/login", json={"ngc_key": key, "ngc_org_name": org})
    token = response.json
    assert token is not None, response.status_code
    return client, {"Authorization": f"Bearer {token['token']}"}


def profile_post(bench: Any, profile: Profiler, count: int = 150) -> None:
    from bench import experiments

    client, headers = _client(bench, "prof")
    client.post(
        "/api/v2/orgs/prof/jobs",
        json=experiments.job_body(experiments.TRUE, "warm"),
        headers=headers,
    )
    with profile("post_jobs"):
        for i in range(count):
            body = experiments.job_body(experiments.TRUE, f"prof-{i}")
            response = client.post("/api/v2/orgs/prof/jobs", json=body, headers=headers)
            assert response.status_code == 201, response.json
    bench.redis.delete("process")


def profile_list(bench: Any, profile: Profiler, org: str, gets: int = 100) -> None:
    """GET /jobs/{id} ``gets`` times, and one list page (seconds each at 100k jobs
    on nx-27017)."""
    client, headers = _client(bench, org)
    job_id = bench.store.db.jobs.find_one({"org": org})["_id"]
    with profile("get_job"):
        for _ in range(gets):
            client.get(f"/api/v2/orgs/{org}/jobs/{job_id}", headers=headers)
    with profile("list_page"):
        client.get(f"/api/v2/orgs/{org}/jobs", headers=headers)
