"""Round trips one accepted ``POST /jobs`` costs: MongoDB commands (counted by a pymongo
command listener) and Redis commands (``INFO commandstats`` before and after), for the
real create path run in this process through Flask's test client."""

from __future__ import annotations

import collections
from typing import Any

from pymongo import MongoClient, monitoring

from bench import experiments, rawcelery
from bench.servers import Bench
from jobyard.api import create_app
from jobyard.store import Store
from jobyard.store.crypto import Cipher


class _Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.seen: collections.Counter[str] = collections.Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.seen[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


def _redis_calls(bench: Bench) -> collections.Counter[str]:
    stats = bench.redis.info("commandstats")
    return collections.Counter(
        {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    )


def per_job(bench: Bench, jobs: int = 20) -> dict[str, Any]:
    settings = bench.settings
    listener = _Commands()
    client: MongoClient[dict[str, Any]] = MongoClient(
        str(settings.mongo_uri), event_listeners=[listener], tz_aware=True
    )
    try:
        store = Store(client[settings.mongo_db], Cipher(str(settings.encryption_key)))
        app = create_app(settings, store=store).test_client()
        user = store.accounts.ensure_user("roundtrips", "bench", is_admin=True)
        key = store.accounts.create_key(user)
        token = app.post("/api/v2/login", json={"ngc_key": key, "ngc_org_name": "roundtrips"})
        headers = {"Authorization": f"Bearer {token.json['token']}"}
        body = experiments.job_body(experiments.TRUE, "warm-up")
        app.post("/api/v2/orgs/roundtrips/jobs", json=body, headers=headers)  # connections up
        listener.seen.clear()
        before = _redis_calls(bench)
        for i in range(jobs):
            body = experiments.job_body(experiments.TRUE, f"count-{i}")
            answer = app.post("/api/v2/orgs/roundtrips/jobs", json=body, headers=headers)
            assert answer.status_code == 201, answer.json
        ours = (dict(listener.seen), _since(bench, before))
        theirs = _baseline(bench, client, jobs, listener)
        store.db.jobs.delete_many({"org": "roundtrips"})
        store.db["bench_raw_jobs"].delete_many({})
        bench.redis.delete("process", "bench_post")
    finally:
        client.close()
    return {"jobs": jobs, "jobyard": _summary(*ours, jobs), "baseline": _summary(*theirs, jobs)}


def _since(bench: Bench, before: collections.Counter[str]) -> dict[str, int]:
    calls = _redis_calls(bench) - before
    calls["info"] -= 1  # the INFO that read these figures
    return dict(+calls)


def _baseline(
    bench: Bench, client: MongoClient[dict[str, Any]], jobs: int, listener: _Commands
) -> tuple[dict[str, int], dict[str, int]]:
    """The same count for the raw baseline: one insert_one and one apply_async per job."""
    raw = rawcelery.create(str(bench.settings.redis_url))
    coll = client[bench.settings.mongo_db]["bench_raw_jobs"]
    raw.send_task(rawcelery.TASK, args=[["true"], "unused"], queue="bench_post")  # warm up
    listener.seen.clear()
    before = _redis_calls(bench)
    for i in range(jobs):
        coll.insert_one({"n": i})
        raw.send_task(rawcelery.TASK, args=[["true"], "unused"], queue="bench_post")
    found = (dict(listener.seen), _since(bench, before))
    raw.close()
    return found


def _summary(mongodb: dict[str, int], redis_calls: dict[str, int], jobs: int) -> dict[str, Any]:
    return {
        "mongodb_per_job": sum(mongodb.values()) / jobs,
        "mongodb_commands": mongodb,
        "redis_per_job": sum(redis_calls.values()) / jobs,
        "redis_commands": redis_calls,
    }
