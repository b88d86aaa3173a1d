"""Jobs on a real SLURM cluster behind a real sshd, through the REST API and a real worker:
what only SLURM has (login-node failover, host keys, batched polling, node failures). The
lifecycle every backend shares (train, pause/resume, cancel, timeout, pending reasons, bad
credentials) is the contract suite's, tests/contract."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from jobyard.backends.base import RunSpec, RunState
from jobyard.backends.slurm.backend import SlurmBackend
from jobyard.workers import engine
from jobyard.workers.celery_app import create_celery
from jobyard.workers.context import Context
from tests.helpers import wait_for
from tests.integration.test_engine import train, until_status
from tests.integration.test_job_control import epoch_events, wait_epoch
from tests.slurm.cluster import (
    SLURM,
    cluster_details,
    free_ports,
    scontrol,
    slurm_command,
    workspace,
)

pytestmark = pytest.mark.integration


def slurm_train(s: Any, ws: str, **overrides: Any) -> str:
    return str(train(s, workspace=ws, backend_details=SLURM, **overrides))


def test_first_login_node_unreachable_the_second_is_used(slurm_cluster, login, worker, store):
    (closed,) = free_ports(1)
    s = login()
    ws = workspace(s, slurm_cluster, slurm_hostname=[f"127.0.0.1:{closed}", slurm_cluster.address])
    worker()
    job_id = slurm_train(s, ws, epochs=2)
    until_status(s, job_id, "Done", timeout=90)
    assert store.jobs.find(job_id)["handle"]["data"]["login_node"] == slurm_cluster.address


def test_a_changed_host_key_is_refused_with_a_clear_error(slurm_cluster, login, worker) -> None:
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    public = other.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    wrong = f"[{slurm_cluster.host}]:{slurm_cluster.port} {public.decode()}\n"
    s = login()
    ws = workspace(s, slurm_cluster, known_hosts=wrong)
    worker()
    job_id = slurm_train(s, ws, epochs=2)
    failed = until_status(s, job_id, "Error", timeout=60)
    message = failed["job_details"]["detailed_status"]["message"]
    assert "host key" in message and "changed" in message and slurm_cluster.address in message


def test_100_jobs_are_watched_with_two_round_trips_per_tick(slurm_cluster, login, settings, store):
    """Reconcile in this process, so the SSH round trips can be counted: one exec for all
    states, one SFTP session for all output, whatever the number of jobs."""
    s = login()
    ws = workspace(s, slurm_cluster)
    ctx = Context(
        settings, store, redis.Redis.from_url(settings.redis_url), create_celery(settings)
    )
    target = f"slurm:{ws}"
    try:
        ids = [slurm_train(s, ws, epochs=1) for _ in range(100)]
        for job_id in ids:
            assert engine.dispatch(ctx, job_id) == "submitted"
        backend = ctx.backend(target)
        assert isinstance(backend, SlurmBackend)
        seen, trips = [], []
        for _ in range(3):
            before = backend.shell.round_trips  # type: ignore[attr-defined]
            seen.append(engine.reconcile(ctx, target))
            trips.append(backend.shell.round_trips - before)  # type: ignore[attr-defined]
        assert seen[0] == 100  # later ticks see fewer: finished jobs were finalized
        assert trips == [2, 2, 2], trips
        messages = [store.jobs.find(i)["job_details"]["detailed_status"]["message"] for i in ids]
        waiting = [m for m in messages if m.startswith("pending: waiting")]
        assert waiting, messages[:5]  # 100 one-CPU jobs on one small node: most must wait
    finally:
        slurm_command(slurm_cluster, "scancel", "-u", slurm_cluster.user)
        ctx.resources.close()


def test_a_node_failure_resubmits_the_job_from_its_checkpoint(slurm_cluster, login, worker):
    s = login()
    ws = workspace(s, slurm_cluster)
    worker()
    # long enough that the run is still going when the node goes down (20 x 0.5 s)
    job_id = slurm_train(s, ws, epochs=20, pace=0.5)
    until_status(s, job_id, "Running", timeout=60)
    wait_epoch(s, job_id, 2)
    try:
        down = scontrol(slurm_cluster, "update", "nodename=localhost", "state=down", "reason=t")
        assert down.returncode == 0, down.stderr

        def resubmitted() -> bool:
            job = s.call("GET", f"jobs/{job_id}").json
            assert job["status"] not in {"Done", "Error", "Canceled"}, job
            return job["run"] == 2 and "resubmitting" in str(job["job_details"])

        wait_for(resubmitted, 60, "the job resubmitted after NODE_FAIL")
    finally:
        # ReturnToService=2 may have brought the node back already: then "resume" is refused
        scontrol(slurm_cluster, "update", "nodename=localhost", "state=resume")
        node = scontrol(slurm_cluster, "show", "node", "localhost").stdout
        assert "State=DOWN" not in node, node
    until_status(s, job_id, "Done", timeout=90)
    first = [e["epoch"] for e in epoch_events(s, job_id, run=1)]
    second = [e["epoch"] for e in epoch_events(s, job_id, run=2)]
    events = s.call("GET", f"jobs/{job_id}:events?detailed=true&run=2").json["events"]
    (start,) = [e["resumed_from_epoch"] for e in events if "resumed_from_epoch" in e]
    # the node may die between an epoch's checkpoint and its status line: never earlier
    assert start in (first[-1], first[-1] + 1), (first, start)
    assert second == list(range(start + 1, 21)), (first, second)


def test_submit_is_idempotent_and_results_are_read_over_sftp(slurm_cluster, settings) -> None:
    config = cluster_details(slurm_cluster)
    config.pop("slurm_python")  # the backend's own default
    backend = SlurmBackend.from_config(settings, config)
    spec = RunSpec(
        job_id=uuid.uuid4().hex,
        run=1,
        action="train",
        specs={},
        command=["/bin/sh", "-c", "mkdir -p c && echo hi > c/out.txt"],
    )
    try:
        first = backend.submit(spec)
        again = backend.submit(spec)  # a retried dispatch: found by name, not submitted twice
        assert again.data["slurm_job_id"] == first.data["slurm_job_id"]
        wait_for(
            lambda: backend.poll([first])[first.name].state is RunState.SUCCEEDED,
            30,
            "the run to succeed",
        )
        files = backend.list_results(first)
        assert [(f.path, f.size) for f in files] == [("c/out.txt", 3)]
        with backend.open_result(first, "c/out.txt") as f:
            assert f.read() == b"hi\n"
    finally:
        backend.close()


def test_an_automl_trial_on_a_node_that_fails_resumes_from_its_checkpoint(
    slurm_cluster, login, worker
):
    """A search on the real cluster, one trial at a time; the node goes DOWN under the
    second trial, which is resubmitted and resumes from its checkpoint; the search ends
    Done with every trial finished (seed 000: interrupted trials resume)."""
    s = login()
    ws = workspace(s, slurm_cluster)
    worker()
    settings = {
        "automl_enabled": True,
        "automl_algorithm": "bayesian",
        "automl_max_recommendations": 3,
        "automl_max_concurrent": 1,
    }
    search_id = slurm_train(s, ws, epochs=12, pace=0.5, automl_settings=settings)

    def second_trial_training() -> str | None:
        details = s.call("GET", f"jobs/{search_id}").json["job_details"]
        rows = (details.get("automl") or {}).get("experiments") or []
        if len(rows) == 2 and (rows[1]["epochs"] or 0) >= 2:
            return str(rows[1]["job_id"])
        return None

    trial = wait_for(second_trial_training, 120, "trial 1 past epoch 2")
    try:
        down = scontrol(slurm_cluster, "update", "nodename=localhost", "state=down", "reason=t")
        assert down.returncode == 0, down.stderr
        wait_for(lambda: s.call("GET", f"jobs/{trial}").json["run"] == 2, 60, "resubmitted")
    finally:
        scontrol(slurm_cluster, "update", "nodename=localhost", "state=resume")
    done = until_status(s, search_id, "Done", timeout=180)
    rows = done["job_details"]["automl"]["experiments"]
    assert [r["outcome"] for r in rows] == ["finished"] * 3
    assert done["job_details"]["automl"]["checkpoints_deleted"] > 0  # over SFTP
    events = s.call(
        "GET", f"jobs/{search_id}:events?detailed=true&automl_experiment_number=1&run=2"
    ).json["events"]
    (start,) = [e["resumed_from_epoch"] for e in events if "resumed_from_epoch" in e]
    assert start >= 2
    second = [e["epoch"] for e in events if e.get("status") == "RUNNING" and "kpi" in e]
    assert second == list(range(start + 1, 13))
