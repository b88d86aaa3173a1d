"""LeptonBackend against the double, with the reference workload as the container."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from jobyard.backends.base import Handle, Offsets, RunSpec, RunState, RunStatus
from jobyard.backends.errors import UnsupportedOperation
from jobyard.backends.lepton.backend import LeptonBackend
from jobyard.backends.lepton.config import LeptonConfig
from jobyard.backends.lepton.stream import exit_line, status_line
from jobyard.store.catalog import REFERENCE
from tests.helpers import wait_for
from tests.lepton.conftest import TOKEN, WORKSPACE


@pytest.fixture
def backend(lepton, fake):
    return LeptonBackend(lepton, LeptonConfig(WORKSPACE, TOKEN, fake.url))


def train_spec(epochs=2, pace=0.0, command=("python", "-m", "jobyard.workloads.classifier")):
    specs = REFERENCE.default_spec("train")
    specs["train"].update(num_epochs=epochs, min_epoch_seconds=pace)
    return RunSpec(job_id=str(uuid.uuid4()), run=1, action="train", command=command, specs=specs)


def drive(backend, handle, until=lambda status, events: status.state.finished, timeout=60):
    """Poll and read like reconcile does, until ``until``; (status, events, log)."""
    status_bytes, log = b"", b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = backend.poll([handle])[handle.name]
        out = backend.read_output([(handle, Offsets(len(status_bytes), len(log)))], 1 << 20)
        status_bytes += out[handle.name].status
        log += out[handle.name].log
        events = [json.loads(line) for line in status_bytes.splitlines()]
        if until(status, events) and not out[handle.name].status:
            return status, events, log
        time.sleep(0.1)
    raise AssertionError(f"run {handle.name} did not get there in {timeout}s")


def test_a_train_run_streams_its_events_and_log_then_succeeds(backend, fake, volume):
    spec = train_spec(epochs=2)
    handle = backend.submit(spec)
    status, events, log = drive(backend, handle)
    assert status == RunStatus(RunState.SUCCEEDED, 0, "completed on Lepton")
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["status"] == "STARTED" and events[-1]["status"] == "SUCCESS"
    assert [e["epoch"] for e in events if e.get("status") == "RUNNING" and "epoch" in e] == [1, 2]
    assert b"epoch 2/2" in log and b"@@jobyard" not in log
    assert (volume / spec.job_id / "results" / "model_latest.npz").is_file()
    assert handle.data["results_dir"] == f"/jobyard/{spec.job_id}/results"


def test_an_evaluate_run_reads_its_parents_results_on_the_shared_volume(backend):
    parent = backend.submit(train_spec(epochs=1))
    assert drive(backend, parent)[0].state is RunState.SUCCEEDED
    spec = RunSpec(
        job_id=str(uuid.uuid4()),
        run=1,
        action="evaluate",
        command=("python", "-m", "jobyard.workloads.classifier"),
        specs=REFERENCE.default_spec("evaluate"),
        parent=parent,
    )
    status, events, _ = drive(backend, backend.submit(spec))
    assert status.state is RunState.SUCCEEDED
    assert events[-1]["status"] == "SUCCESS" and events[-1]["kpi"]["accuracy"] > 0.8


class RecordedLog:
    """Stands in for the client: one replica whose log is fixed, as after the run ended."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def replicas(self, job_id):
        return [{"id": "r0", "metadata": {"id": "r0"}}]

    def replica_log(self, job_id, replica_id, max_bytes):
        return self.raw


def test_output_comes_in_whole_lines_at_most_max_bytes_each(fake):
    lines = [b'{"seq": %d, "message": "%s"}\n' % (i, b"x" * (i % 7)) for i in range(1, 40)]
    raw = b"".join(status_line(line) + b"log line %d\n" % i for i, line in enumerate(lines))
    backend = LeptonBackend(RecordedLog(raw + exit_line(0)), LeptonConfig(WORKSPACE, TOKEN, ""))
    handle = Handle("lepton", "jy-x-r1", {"lepton_job": "jy-x-r1-abc"})
    backend._seen["jy-x-r1-abc"] = "Completed"  # as poll leaves it
    status, log, chunks = b"", b"", 0
    while True:
        out = backend.read_output([(handle, Offsets(len(status), len(log)))], 64)[handle.name]
        if not out.status and not out.log:
            break
        assert len(out.status) <= 64 and len(out.log) <= 64
        assert out.status.endswith(b"\n") or not out.status
        status, log, chunks = status + out.status, log + out.log, chunks + 1
    assert status == b"".join(lines)
    assert log == b"".join(b"log line %d\n" % i for i in range(len(lines)))
    assert chunks > 10


def test_submit_twice_finds_the_job_it_created(backend, fake):
    spec = train_spec(command=("true",))
    first, second = backend.submit(spec), backend.submit(spec)
    assert first == second
    assert len(fake.jobs) == 1 and len(fake.calls("POST", "/jobs")) == 2


def test_a_graceful_stop_lets_the_workload_checkpoint_and_pause(backend, fake):
    handle = backend.submit(train_spec(epochs=50, pace=0.3))
    drive(backend, handle, until=lambda s, events: any(e.get("epoch") for e in events))
    backend.stop(handle, graceful=True)
    status, events, _ = drive(backend, handle)
    assert status.state is RunState.PAUSED and status.exit_code == 75
    assert events[-1]["status"] == "PAUSED" and events[-1]["checkpoint"].endswith(".npz")
    assert fake.state(handle.data["lepton_job"]) == "Stopped"


def test_an_abrupt_stop_deletes_the_job(backend, fake):
    handle = backend.submit(train_spec(epochs=50, pace=0.3))
    wait_for(lambda: backend.poll([handle])[handle.name].state is RunState.RUNNING, 30, "run")
    backend.stop(handle, graceful=False)
    assert fake.state(handle.data["lepton_job"]) is None
    assert backend.poll([handle])[handle.name].state is RunState.LOST
    backend.cleanup(handle)  # already gone: nothing to do, no error


def test_a_failing_command_fails_with_its_exit_code(backend):
    handle = backend.submit(train_spec(command=("sh", "-c", "echo broken >&2; exit 3")))
    status, _, log = drive(backend, handle)
    assert (status.state, status.exit_code, status.reason) == (RunState.FAILED, 3, "exit code 3")
    assert log == b"broken\n"


def test_a_hundred_runs_are_polled_with_one_list_call(backend, fake):
    fake.capacity = 0  # all queued: no process, and the reason must say why
    handles = [backend.submit(train_spec(command=("true",))) for _ in range(100)]
    fake.requests.clear()
    statuses = backend.poll(handles)
    assert len(statuses) == 100
    assert {s.state for s in statuses.values()} == {RunState.QUEUED}
    assert {s.reason for s in statuses.values()} == {
        "queued on Lepton: waiting for cpu.small capacity"
    }
    # one list call: the page holding all 100, then the empty page that ends it
    assert [(m, q["page"]) for m, _, q, _ in fake.requests] == [("GET", "1"), ("GET", "2")]
    outputs = backend.read_output([(h, Offsets()) for h in handles], 65536)
    assert all(not o.status and not o.log for o in outputs.values())
    assert len(fake.requests) == 2  # nothing to read before a run starts


def test_a_lone_run_is_looked_up_directly_and_a_missing_one_is_confirmed(backend, fake):
    fake.capacity = 0
    kept, deleted = (backend.submit(train_spec(command=("true",))) for _ in range(2))
    fake.requests.clear()
    assert backend.poll([kept])[kept.name].state is RunState.QUEUED
    assert [(m, p.rsplit("/", 1)[-1]) for m, p, _, _ in fake.requests] == [
        ("GET", kept.data["lepton_job"])
    ]
    backend.stop(deleted, graceful=False)
    fake.requests.clear()
    statuses = backend.poll([kept, deleted])
    assert statuses[deleted.name].state is RunState.LOST
    assert [(m, p.rsplit("/", 1)[-1]) for m, p, _, _ in fake.requests] == [
        ("GET", "jobs"),
        ("GET", "jobs"),
        ("GET", deleted.data["lepton_job"]),
    ]


def test_results_are_not_read_through_the_job_api(backend):
    handle = Handle("lepton", "jy-x-r1", {"lepton_job": "jy-x-r1-0"})
    with pytest.raises(UnsupportedOperation, match="storage_backend"):
        backend.list_results(handle)
    with pytest.raises(UnsupportedOperation, match="storage_backend"):
        backend.open_result(handle, "model.npz")
