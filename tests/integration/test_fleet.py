"""Workers and queues for operators, with a real Celery worker and Redis: a worker's
heartbeat (queues, concurrency, tasks done) shown to admins and aged to lost, then dropped,
after a SIGKILL; the broker backlog and the jobs waiting per queue, another org's ids
never shown; an org's own queue view; seed 004's queue_metrics from the tick's samples."""

from __future__ import annotations

import dataclasses

import pytest
import redis

from jobyard.api.services import services
from jobyard.workers import fleet
from tests.helpers import assert_error, wait_for
from tests.integration.test_engine import train, until_status

pytestmark = pytest.mark.integration


def _admin_get(session, path):
    return session.client.get(f"/api/v2/admin/{path}", headers=session.headers)


def test_a_worker_reports_is_seen_then_lost_then_dropped(login, worker, app):
    svc = services(app)
    svc.settings = dataclasses.replace(svc.settings, worker_lost_after_seconds=1.0)
    admin, member = login(admin=True), login(user="bob")
    running = worker(JOBYARD_WORKER_HEARTBEAT_SECONDS="0.3")
    found = wait_for(lambda: _admin_get(admin, "workers").json["workers"], 30, "a report")
    (shown,) = found
    assert shown["state"] == "alive" and shown["concurrency"] == 2 and shown["pid"] > 0
    assert {"process", "control", "maintenance"} <= set(shown["queues"])
    assert shown["register_time"] <= shown["last_report_time"]
    assert "memory_used" in shown["machine"] and "cpu_usage" in shown["machine"]
    assert_error(_admin_get(member, "workers"), 403)

    until_status(admin, train(admin, epochs=1), "Done")
    wait_for(lambda: _admin_get(admin, "workers").json["workers"][0]["tasks_done"] > 0, 20, "tasks")
    running.kill()
    wait_for(lambda: _admin_get(admin, "workers").json["workers"][0]["state"] == "lost", 20, "lost")
    wait_for(lambda: _admin_get(admin, "workers").json["workers"] == [], 30, "dropped")


def test_backlog_and_waiting_jobs_per_queue_without_other_orgs_ids(login, settings):
    redis.Redis.from_url(str(settings.redis_url)).flushall()
    acme, globex = login(admin=True), login("globex", admin=True)
    jobs = [train(acme, epochs=1) for _ in range(3)]  # no worker: they wait
    queues = {q["name"]: q for q in _admin_get(acme, "queues").json["queues"]}
    process = queues["process"]
    assert process["messages"] == 3 and process["jobs_waiting"] == 3
    assert process["oldest_message_age_seconds"] >= 0
    assert process["next_job"]["id"] == jobs[0] and process["avg_waiting_seconds"] >= 0
    seen_by_other = {q["name"]: q for q in _admin_get(globex, "queues").json["queues"]}
    assert seen_by_other["process"]["next_job"]["id"] == "another org's"
    own = {q["name"]: q for q in acme.call("GET", "queues").json["queues"]}
    assert own["process"]["jobs_waiting"] == 3 and "messages" not in own["process"]
    theirs = {q["name"]: q for q in globex.call("GET", "queues").json["queues"]}
    assert theirs["process"]["jobs_waiting"] == 0 and theirs["process"]["next_job"] is None
    assert_error(globex.client.get("/api/v2/orgs/acme/queues", headers=globex.headers), 403)


def test_queue_metrics_take_the_longest_wait_of_each_interval(login, store, settings):
    broker = redis.Redis.from_url(str(settings.redis_url))
    broker.flushall()
    admin = login(admin=True)
    t0 = 1_800_000_000.0
    train(admin, epochs=1)  # no worker: its dispatch message waits in the process queue
    store.db.jobs.update_many({}, {"$set": {"enqueued_at": t0 - 10}})
    for offset in (0, 40, 70, 100):  # each at least SAMPLE_SECONDS after the one before
        assert fleet.sample(store, broker, t0 + offset) == len(fleet.QUEUES)
    assert fleet.sample(store, broker, t0 + 110) == 0  # too soon after the last
    got = _admin_get(admin, f"queues/process:metrics?from={t0}&to={t0 + 120}&interval=60").json
    assert got["queue"] == "process" and got["dates"] == [int(t0), int(t0 + 60)]
    # of (t0: 10 s, t0+40: 50 s) and (t0+70: 80 s, t0+100: 110 s), the longest waits
    assert got["avg_waiting_times"] == [pytest.approx(50.0), pytest.approx(110.0)]
    assert got["queue_lengths"] == [1, 1]
    assert_error(_admin_get(admin, "queues/nope:metrics"), 404)
    assert_error(_admin_get(login(user="bob"), "queues/process:metrics"), 403)


def test_a_warm_shutdown_removes_the_workers_report_at_once(login, worker):
    admin = login(admin=True)
    running = worker(JOBYARD_WORKER_HEARTBEAT_SECONDS="0.3")
    wait_for(lambda: _admin_get(admin, "workers").json["workers"], 30, "a report")
    running.stop()  # SIGTERM: Celery's warm shutdown; lost would take 30 s, dropped 300 s
    assert _admin_get(admin, "workers").json["workers"] == []
