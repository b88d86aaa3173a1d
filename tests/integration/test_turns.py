"""The orgs' dispatch lines on a real Redis: orgs take turns, priority then age within
an org, a job is in its line once, and its request id comes out with it."""

from __future__ import annotations

import redis

from jobyard.workers.turns import Turns, score


def _job(org: str, n: int, priority: int = 1) -> dict[str, object]:
    return {
        "_id": f"{org}-{n}",
        "org": org,
        "created_on": 1_800_000_000.0 + n,
        "priority_rank": priority,
    }


def _drain(turns: Turns, queue: str) -> list[str]:
    taken = []
    while (turn := turns.take(queue)) is not None:
        taken.append(turn.job_id)
    return taken


def test_orgs_take_turns_however_many_jobs_one_of_them_sent_first(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    turns = Turns(client)
    for n in range(6):
        turns.enter("process", _job("acme", n), None)
    turns.enter("process", _job("globex", 0), None)
    turns.enter("process", _job("initech", 0), None)
    turns.enter("process", _job("globex", 1), None)
    assert _drain(turns, "process") == [
        "acme-0",
        "globex-0",
        "initech-0",
        "acme-1",
        "globex-1",
        "acme-2",
        "acme-3",
        "acme-4",
        "acme-5",
    ]
    assert client.keys("jobyard:turns:*") == []  # nothing left behind by empty lines


def test_within_an_org_high_before_normal_before_low_then_oldest_first(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    turns = Turns(client)
    for n, priority in enumerate([0, 1, 2, 1, 0, 2]):
        turns.enter("slurm", _job("acme", n, priority), None)
    assert _drain(turns, "slurm") == ["acme-2", "acme-5", "acme-1", "acme-3", "acme-0", "acme-4"]
    assert score(_job("acme", 0, 2)) < score(_job("acme", 9, 2)) < score(_job("acme", 0, 1))


def test_a_job_sent_twice_is_in_its_line_once_and_keeps_its_request_id(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    turns = Turns(client)
    turns.enter("process", _job("acme", 0), "req-1")
    turns.enter("process", _job("acme", 0), None)  # the tick's re-send has no request
    turns.enter("kubernetes", _job("acme", 1), None)  # another queue, another line
    first = turns.take("process")
    assert first is not None and (first.job_id, first.request_id) == ("acme-0", "req-1")
    assert turns.take("process") is None  # the second turn finds an empty line
    second = turns.take("kubernetes")
    assert second is not None and (second.job_id, second.request_id) == ("acme-1", None)


def test_lines_survive_a_script_cache_flush(redis_url):
    """After a Redis restart the scripts are gone from its cache; the next call loads them."""
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    turns = Turns(client)
    turns.enter("process", _job("acme", 0), None)
    client.script_flush()
    turns.enter("process", _job("acme", 1), None)
    client.script_flush()
    assert _drain(turns, "process") == ["acme-0", "acme-1"]
