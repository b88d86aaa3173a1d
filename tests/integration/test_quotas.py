"""Per-org quotas and priorities with a real Celery worker: 12 jobs under a quota of 3
never have more than 3 running at any sample and all end Done; jobs beyond the quota
wait Pending saying why; high starts before normal before low; another org is not held
back; the quota through the API (admins set it) and ``jobyard admin quota``."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from jobyard import cli
from tests.helpers import assert_error, wait_for
from tests.integration.test_engine import train, until_status

pytestmark = pytest.mark.integration
RUNNING = ("Running", "Pausing")


def _quota(session, jobs=None, gpus=None):
    body = {"max_running_jobs": jobs, "max_gpus": gpus}
    answer = session.call("PUT", "quota", json=body)
    assert answer.status_code == 200, answer.json
    return answer.json


@contextlib.contextmanager
def _peak_running(store, org="acme"):
    """The most of ``org``'s jobs seen running at once, sampled every 50 ms in the block."""
    peak, stop = [0], threading.Event()

    def sample():
        while not stop.is_set():
            n = store.db.jobs.count_documents({"org": org, "status": {"$in": RUNNING}})
            peak[0] = max(peak[0], n)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        stop.set()
        sampler.join()


def test_twelve_jobs_under_a_quota_of_three_never_run_more_than_three(login, worker, store):
    admin = login(admin=True)
    assert _quota(admin, jobs=3) == {"max_running_jobs": 3, "max_gpus": None, "backends": []}
    jobs = [train(admin, epochs=2, pace=0.3) for _ in range(12)]
    other = login("globex")
    theirs = train(other, epochs=1)
    with _peak_running(store) as peak:
        worker()
        until_status(other, theirs, "Done", timeout=60)  # another org is not held back
        waiting = wait_for(
            lambda: [
                j
                for j in (admin.call("GET", f"jobs/{i}").json for i in jobs)
                if j["status"] == "Pending"
                and "of 3 jobs running" in j["job_details"]["detailed_status"]["message"]
            ],
            30,
            "a job waiting for the quota",
        )
        assert "of 3 jobs running" in waiting[0]["job_details"]["detailed_status"]["message"]
        for job_id in jobs:
            until_status(admin, job_id, "Done", timeout=120)
    assert peak[0] == 3, peak


def test_high_starts_before_normal_before_low(login, worker, store):
    admin = login(admin=True)
    _quota(admin, jobs=1)
    first = train(admin, epochs=3, pace=0.5)
    worker()
    until_status(admin, first, "Running")
    order = [train(admin, epochs=1, priority=p) for p in ("low", "normal", "high")]
    for job_id in order:
        until_status(admin, job_id, "Done", timeout=90)
    started = {j: store.jobs.find(j)["started_on"] for j in order}
    low, normal, high = (started[j] for j in order)
    assert high < normal < low, started
    assert admin.call("GET", f"jobs/{order[2]}").json["priority"] == "high"
    assert_error(
        admin.call(
            "POST", "jobs", json={"kind": "experiment", "action": "train", "priority": "urgent"}
        ),
        400,
    )


def test_the_quota_is_read_by_members_and_set_by_admins(login, settings, monkeypatch):
    admin, member = login(admin=True), login(user="bob")
    none = {"max_running_jobs": None, "max_gpus": None, "backends": []}
    assert member.call("GET", "quota").json == none
    assert_error(member.call("PUT", "quota", json={"max_running_jobs": 2, "max_gpus": None}), 403)
    assert "max_running_jobs" in str(
        assert_error(
            admin.call("PUT", "quota", json={"max_running_jobs": 0, "max_gpus": None}), 400
        )
    )
    _quota(admin, jobs=2, gpus=8)
    assert member.call("GET", "quota").json == {**none, "max_running_jobs": 2, "max_gpus": 8}
    for name, value in {
        "JOBYARD_MONGO_URI": str(settings.mongo_uri),
        "JOBYARD_MONGO_DB": settings.mongo_db,
        "JOBYARD_ENCRYPTION_KEY": str(settings.encryption_key),
        "JOBYARD_DATA_DIR": str(settings.data_dir),
    }.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["admin", "quota", "--org", "acme", "--max-gpus", "none"]) == 0
    assert member.call("GET", "quota").json == {**none, "max_running_jobs": 2}
    on_slurm = ["admin", "quota", "--org", "acme", "--backend", "slurm:ws-1", "--max-gpus", "4"]
    assert cli.main(on_slurm) == 0
    limits = {"backend": "slurm:ws-1", "max_running_jobs": None, "max_gpus": 4}
    assert member.call("GET", "quota").json["backends"] == [limits]
    assert cli.main([*on_slurm[:-1], "none"]) == 0  # both limits lifted: the entry goes
    assert member.call("GET", "quota").json["backends"] == []
    for bad, field in (
        (
            {"backends": [{"backend": "mainframe", "max_running_jobs": 1, "max_gpus": None}]},
            "backend",
        ),
        ({"backends": [limits, limits]}, "at most once"),
    ):
        body = {"max_running_jobs": None, "max_gpus": None, **bad}
        assert field in str(assert_error(admin.call("PUT", "quota", json=body), 400))


def test_a_backend_target_quota_holds_its_jobs_and_not_the_orgs_others(login, worker, store):
    """Limits on one backend target only: 6 jobs there never run more than 2 at once,
    and say so; the org-wide limit is unset."""
    admin = login(admin=True)
    body = {
        "max_running_jobs": None,
        "max_gpus": None,
        "backends": [{"backend": "process", "max_running_jobs": 2, "max_gpus": None}],
    }
    assert admin.call("PUT", "quota", json=body).json["backends"] == body["backends"]
    jobs = [train(admin, epochs=2, pace=0.3) for _ in range(6)]
    with _peak_running(store) as peak:
        worker()
        wait_for(
            lambda: any(
                "waiting for org quota on process: 2 of 2 jobs running"
                in admin.call("GET", f"jobs/{i}").json["job_details"]["detailed_status"]["message"]
                for i in jobs
            ),
            30,
            "a job waiting for the target's quota",
        )
        for job_id in jobs:
            until_status(admin, job_id, "Done", timeout=120)
    assert peak[0] == 2, peak


def test_without_a_quota_two_orgs_take_turns(login, worker, store):
    """Ten jobs of one org sent before another org's two: the two start among the first
    five (turns), not after all ten (one FIFO queue)."""
    mine, theirs = login(), login("globex")
    first = [train(mine, epochs=1) for _ in range(10)]
    then = [train(theirs, epochs=1) for _ in range(2)]
    worker()
    for s, job_id in [(mine, j) for j in first] + [(theirs, j) for j in then]:
        until_status(s, job_id, "Done", timeout=120)
    started = sorted(first + then, key=lambda j: store.jobs.find(j)["started_on"])
    assert max(started.index(j) for j in then) < 5, started
