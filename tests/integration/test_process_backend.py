"""The process backend against real processes: no mocks, tiny shell and Python workloads."""

from __future__ import annotations

import gc
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobyard.backends import registry
from jobyard.backends.base import EXIT_PAUSED, Handle, Offsets, RunSpec, RunState, RunStatus
from jobyard.backends.errors import SubmitRejected
from jobyard.backends.output import whole_lines
from jobyard.backends.process import launcher
from jobyard.backends.process.backend import ProcessBackend
from jobyard.backends.process.procfs import parse_stat
from jobyard.schemas.settings import Settings
from tests.helpers import literal

TIMEOUT = 10.0

# Waits for $JY_RESULTS_DIR/go, so a test controls when the workload finishes.
WAIT_FOR_GO = (
    "import os, pathlib, time\n"
    "go = pathlib.Path(os.environ['JY_RESULTS_DIR'], 'go')\n"
    "while not go.exists(): time.sleep(0.01)\n"
)

# Announces itself in the status file, then on SIGTERM writes PAUSED and exits 75.
CHECKPOINTS_ON_SIGTERM = """
import json, os, signal, sys, time
def emit(event):
    with open(os.environ['JY_STATUS_FILE'], 'a') as fh:
        fh.write(json.dumps(event) + '\\n')
def on_term(signum, frame):
    emit({'status': 'PAUSED'})
    sys.exit(75)
signal.signal(signal.SIGTERM, on_term)
emit({'status': 'STARTED'})
while True:
    time.sleep(0.01)
"""

# Writes one line and half of the next, waits for "go", then completes the second line.
PARTIAL_LINE = (
    "import os, sys\n"
    "fh = open(os.environ['JY_STATUS_FILE'], 'ab', buffering=0)\n"
    'fh.write(b\'{"a": 1}\\n{"b": \')\n' + WAIT_FOR_GO + "fh.write(b'2}\\n')\n"
    "fh.close()\n"
)


def wait_for(condition: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {condition}")
        time.sleep(0.01)


def launchers_of(handle: Handle) -> list[int]:
    """Live launcher processes started for this run, found by their command line."""
    marker = f"{launcher.NAME}\0{handle.data['run_dir']}\0".encode()
    found = []
    for pid in live_processes():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmdline:
            found.append(pid)
    return found


def live_processes() -> list[int]:
    return [pid for pid, _ in _stats() if pid]


def _stats() -> list[tuple[int, list[str]]]:
    """(pid, stat fields from field 3 on) of every non-zombie process."""
    stats = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if fields[0] != "Z":
            stats.append((int(entry.name), fields))
    return stats


def live_group_members(pgid: int) -> list[int]:
    """Non-zombie processes in process group ``pgid``, read straight from /proc."""
    return [pid for pid, fields in _stats() if int(fields[2]) == pgid]


def spec(job_id: str, command: list[str], run: int = 1, **kw: Any) -> RunSpec:
    return RunSpec(job_id=job_id, run=run, action="train", command=literal(command), specs={}, **kw)


class Runs:
    """A backend rooted in tmp_path that kills whatever a test leaves running."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.backend = ProcessBackend(root, grace_period_seconds=1.0)
        self.handles: list[Handle] = []

    def submit(self, run_spec: RunSpec) -> Handle:
        handle = self.backend.submit(run_spec)
        self.handles.append(handle)
        return handle

    def status(self, handle: Handle, backend: ProcessBackend | None = None) -> RunStatus:
        return (backend or self.backend).poll([handle])[handle.name]

    def finish(self, handle: Handle, backend: ProcessBackend | None = None) -> RunStatus:
        status: RunStatus = wait_for(
            lambda: (s := self.status(handle, backend)).state.finished and s
        )
        return status

    def output(
        self, handle: Handle, offsets: Offsets | None = None, max_bytes: int = 1 << 20
    ) -> Any:
        request = [(handle, offsets or Offsets())]
        return self.backend.read_output(request, max_bytes)[handle.name]

    def go(self, handle: Handle) -> None:
        (Path(handle.data["results_dir"]) / "go").touch()

    def kill_all(self) -> None:
        for handle in self.handles:
            self.backend.stop(handle, graceful=False)


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[Runs]:
    runs = Runs(tmp_path / "runs")
    yield runs
    runs.kill_all()


def test_run_succeeds_with_its_output(runs: Runs) -> None:
    script = "echo hi; echo oops >&2; while [ ! -e go ]; do sleep 0.01; done"  # cwd: results
    handle = runs.submit(spec("ok", ["sh", "-c", script]))

    assert handle.backend == "process" and handle.name == "jy-ok-r1"
    running = runs.status(handle)
    assert running.state is RunState.RUNNING and running.started_at is not None
    runs.go(handle)
    done = runs.finish(handle)
    assert (done.state, done.exit_code) == (RunState.SUCCEEDED, 0)
    assert runs.output(handle).log == b"hi\noops\n"
    run_dir = Path(handle.data["run_dir"])
    assert json.loads((run_dir / "exit.json").read_text())["exit_code"] == 0
    launch = json.loads((run_dir / "launch.json").read_text())
    assert launch["pid"] == launch["pgid"] == handle.data["pid"]
    assert launch["start_ticks"] == handle.data["start_ticks"]
    assert runs.backend.results_location(handle) == str(runs.root / "ok" / "results")


def test_nonzero_exit_fails_with_its_code(runs: Runs) -> None:
    handle = runs.submit(spec("bad", ["sh", "-c", "echo hi; exit 3"]))

    done = runs.finish(handle)
    assert (done.state, done.exit_code, done.reason) == (RunState.FAILED, 3, "exit code 3")


def test_workload_killed_by_a_signal_is_recorded_by_the_launcher(runs: Runs) -> None:
    handle = runs.submit(spec("sig", ["sh", "-c", "kill -9 $$"]))

    done = runs.finish(handle)
    assert (done.state, done.exit_code, done.reason) == (
        RunState.FAILED,
        137,
        "killed by signal 9",
    )


def test_command_not_found_is_a_failed_run(runs: Runs) -> None:
    handle = runs.submit(spec("nocmd", ["jobyard-no-such-command-xyz"]))

    done = runs.finish(handle)
    assert (done.state, done.exit_code) == (RunState.FAILED, 127)
    assert b"jobyard-no-such-command-xyz" in runs.output(handle).log


def test_submit_is_idempotent(runs: Runs) -> None:
    run_spec = spec("twice", ["python", "-c", WAIT_FOR_GO])
    first = runs.submit(run_spec)
    launch = Path(first.data["run_dir"], "launch.json")
    before = launch.read_bytes()

    wait_for(lambda: len(live_group_members(first.data["pid"])) == 2)

    second = runs.submit(run_spec)

    assert second == first
    assert launch.read_bytes() == before
    assert launchers_of(first) == [first.data["pid"]]
    # The launcher and one workload: nothing was started twice.
    assert len(live_group_members(first.data["pid"])) == 2
    runs.go(first)
    assert runs.finish(first).state is RunState.SUCCEEDED


def test_concurrent_submits_start_one_run(runs: Runs) -> None:
    run_spec = spec("race", ["python", "-c", WAIT_FOR_GO])
    handles: list[Handle] = []
    threads = [
        threading.Thread(target=lambda: handles.append(runs.submit(run_spec))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(handles) == 4 and all(h == handles[0] for h in handles)
    assert launchers_of(handles[0]) == [handles[0].data["pid"]]
    runs.go(handles[0])
    assert runs.finish(handles[0]).state is RunState.SUCCEEDED


def test_a_submit_retried_after_its_worker_died_mid_launch_adopts_the_run(runs: Runs) -> None:
    """The window between starting the launcher and recording it: a worker SIGKILLed there
    leaves a running launcher and no launch.json. The retried submit must not start a
    second one."""
    run_spec = spec("window", ["python", "-c", WAIT_FOR_GO + "print('ran')"])
    first = runs.submit(run_spec)
    launch = Path(first.data["run_dir"], "launch.json")
    launch.unlink()  # as if the worker died before writing it

    again = runs.submit(run_spec)

    assert again.data["pid"] == first.data["pid"]
    assert again.data["start_ticks"] == first.data["start_ticks"]
    assert launchers_of(first) == [first.data["pid"]]
    assert launch.exists()
    runs.go(first)
    assert runs.finish(again).state is RunState.SUCCEEDED
    assert runs.output(again).log == b"ran\n"  # the workload ran once


def test_a_launch_retried_after_the_run_finished_does_not_run_it_again(runs: Runs) -> None:
    run_spec = spec("finished", ["sh", "-c", "echo once"])
    first = runs.submit(run_spec)
    runs.finish(first)
    Path(first.data["run_dir"], "launch.json").unlink()

    again = runs.submit(run_spec)

    assert again.data["pid"] == first.data["pid"]
    assert runs.finish(again).state is RunState.SUCCEEDED
    assert runs.output(again).log == b"once\n"


def test_a_new_backend_instance_manages_the_run(runs: Runs) -> None:
    handle = runs.submit(spec("restart", ["python", "-c", WAIT_FOR_GO + "print('done')"]))
    stored = Handle.from_doc(json.loads(json.dumps(handle.to_doc())))
    restarted = ProcessBackend(runs.root)

    assert runs.status(stored, restarted).state is RunState.RUNNING
    runs.go(stored)
    done = runs.finish(stored, restarted)
    assert (done.state, done.exit_code) == (RunState.SUCCEEDED, 0)
    output = restarted.read_output([(stored, Offsets())], 1024)[stored.name]
    assert output.log == b"done\n"


def test_launcher_records_the_exit_after_the_submitter_is_gone(tmp_path: Path) -> None:
    backend = ProcessBackend(tmp_path)
    handle = backend.submit(spec("orphan", ["sh", "-c", "sleep 0.2; exit 4"]))
    del backend
    gc.collect()

    exit_file = Path(handle.data["run_dir"], "exit.json")
    wait_for(exit_file.exists)
    assert json.loads(exit_file.read_text())["exit_code"] == 4
    status = ProcessBackend(tmp_path).poll([handle])[handle.name]
    assert (status.state, status.exit_code) == (RunState.FAILED, 4)


def test_graceful_stop_pauses_the_workload(runs: Runs) -> None:
    handle = runs.submit(spec("pause", ["python", "-c", CHECKPOINTS_ON_SIGTERM]))
    wait_for(lambda: b"STARTED" in runs.output(handle).status)

    runs.backend.stop(handle, graceful=True)

    done = runs.finish(handle)
    assert (done.state, done.exit_code) == (RunState.PAUSED, EXIT_PAUSED)
    events = [json.loads(line) for line in runs.output(handle).status.splitlines()]
    assert events == [{"status": "STARTED"}, {"status": "PAUSED"}]
    runs.backend.stop(handle, graceful=True)  # finished: stopping again is a no-op


def test_hard_stop_kills_the_whole_group(runs: Runs) -> None:
    script = 'sleep 30 & sleep 30 & echo up > "$JY_STATUS_FILE"; wait'
    handle = runs.submit(spec("kill", ["sh", "-c", script]))
    pgid = handle.data["pid"]
    wait_for(lambda: runs.output(handle).status == b"up\n")
    assert len(live_group_members(pgid)) == 4  # launcher, sh and two sleeps

    runs.backend.stop(handle, graceful=False)

    wait_for(lambda: not live_group_members(pgid), timeout=5)
    done = runs.finish(handle)
    assert done.state in (RunState.KILLED, RunState.FAILED)
    if done.state is RunState.KILLED:
        assert done.reason == "process vanished without an exit code"
    else:
        assert done.reason == "killed by signal 9"
    runs.backend.stop(handle, graceful=False)  # already gone: no error


def test_stop_never_signals_a_reused_pid(runs: Runs) -> None:
    handle = runs.submit(spec("reuse", ["python", "-c", WAIT_FOR_GO]))
    stale = Handle(handle.backend, handle.name, {**handle.data, "start_ticks": 1})

    wait_for(lambda: len(live_group_members(handle.data["pid"])) == 2)

    runs.backend.stop(stale, graceful=False)

    assert runs.status(handle).state is RunState.RUNNING
    assert len(live_group_members(handle.data["pid"])) == 2


def test_status_lines_are_returned_whole(runs: Runs) -> None:
    handle = runs.submit(spec("lines", ["python", "-c", PARTIAL_LINE]))
    status_file = Path(handle.data["run_dir"], "status.jsonl")
    wait_for(
        lambda: status_file.exists() and status_file.stat().st_size == len(b'{"a": 1}\n{"b": ')
    )

    first = runs.output(handle).status
    assert first == b'{"a": 1}\n'
    assert runs.output(handle, Offsets(status=len(first))).status == b""

    runs.go(handle)
    assert runs.finish(handle).state is RunState.SUCCEEDED
    assert runs.output(handle, Offsets(status=len(first))).status == b'{"b": 2}\n'


def test_reading_in_small_chunks_continues_exactly(runs: Runs) -> None:
    script = (
        'for i in 1 2 3 4 5; do echo "{\\"i\\": $i}" >> "$JY_STATUS_FILE"; done; '
        'printf \'x%.0s\' $(seq 40) >> "$JY_STATUS_FILE"; echo >> "$JY_STATUS_FILE"; '
        "printf 'tail' >> \"$JY_STATUS_FILE\"; echo 'a long line of log output'"
    )
    handle = runs.submit(spec("chunks", ["sh", "-c", script]))
    assert runs.finish(handle).state is RunState.SUCCEEDED
    full = Path(handle.data["run_dir"], "status.jsonl").read_bytes()
    assert full.count(b"x") == 40 and full.endswith(b"\ntail")

    status, log, chunks = b"", b"", []
    while out := runs.output(handle, Offsets(len(status), len(log)), max_bytes=20):
        if not out.status and not out.log:
            break
        assert len(out.status) <= 20 and len(out.log) <= 20
        chunks.append(out.status)
        status, log = status + out.status, log + out.log

    assert status == full
    assert log == b"a long line of log output\n"
    # Whole lines only, except the 40-byte line (two 20-byte slices) and, the run being
    # over, the unterminated tail.
    assert [c for c in chunks if c and not c.endswith(b"\n")] == [b"x" * 20, b"x" * 20, b"\ntail"]


def test_environment_has_the_contract_and_no_secrets(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBYARD_TEST_SECRET", "s3cret")
    monkeypatch.setenv("JY_PARENT_RESULTS_DIR", "/stale/from/the/worker")
    dump = "import json, os; print(json.dumps({'env': dict(os.environ), 'cwd': os.getcwd()}))"
    parent = Handle("process", "jy-parent-r1", {"results_dir": "/runs/parent/results"})
    run_spec = RunSpec(
        job_id="env",
        run=2,
        action="evaluate",
        command=literal(["python", "-c", dump]),
        specs={"epochs": 3},
        env={"EXTRA": "yes"},
        parent=parent,
    )
    handle = runs.submit(run_spec)
    assert runs.finish(handle).state is RunState.SUCCEEDED

    seen = json.loads(runs.output(handle).log)
    env, run_dir = seen["env"], Path(handle.data["run_dir"])
    assert not [key for key in env if key.startswith("JOBYARD_")]
    assert env["JY_JOB_ID"] == "env" and env["JY_RUN"] == "2" and env["JY_ACTION"] == "evaluate"
    assert env["JY_RESULTS_DIR"] == handle.data["results_dir"] == seen["cwd"]
    assert env["JY_STATUS_FILE"] == str(run_dir / "status.jsonl")
    assert json.loads(Path(env["JY_SPECS_FILE"]).read_text()) == {"epochs": 3}
    assert env["JY_PARENT_RESULTS_DIR"] == "/runs/parent/results"
    assert env["EXTRA"] == "yes"
    assert run_dir == runs.root / "env" / "run-2"


def test_no_parent_means_no_parent_results_dir(runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JY_PARENT_RESULTS_DIR", "/stale/from/the/worker")
    dump = "import json, os; print(json.dumps(dict(os.environ)))"
    handle = runs.submit(spec("noparent", [sys.executable, "-c", dump]))
    runs.finish(handle)

    assert "JY_PARENT_RESULTS_DIR" not in json.loads(runs.output(handle).log)


def test_runs_of_a_job_share_the_results_dir(runs: Runs) -> None:
    write = ["sh", "-c", 'echo "$JY_RUN" >> checkpoint.txt']
    first = runs.submit(spec("resume", write, run=1))
    runs.finish(first)
    second = runs.submit(spec("resume", write, run=2))
    runs.finish(second)

    assert first.data["results_dir"] == second.data["results_dir"]
    assert first.data["run_dir"] != second.data["run_dir"]
    assert Path(first.data["results_dir"], "checkpoint.txt").read_text() == "1\n2\n"


def test_unknown_run_is_lost(runs: Runs, tmp_path: Path) -> None:
    handle = Handle("process", "jy-ghost-r1", {"run_dir": str(tmp_path / "nowhere"), "pid": 1})

    assert runs.status(handle).state is RunState.LOST
    assert runs.output(handle) == runs.output(handle, Offsets(5, 5))
    assert runs.output(handle).status == b"" and runs.output(handle).log == b""


def test_bad_job_id_is_rejected(runs: Runs) -> None:
    with pytest.raises(SubmitRejected):
        runs.submit(spec("../escape", ["true"]))


def test_cleanup_keeps_results_and_is_idempotent(runs: Runs) -> None:
    handle = runs.submit(spec("clean", ["sh", "-c", "echo kept > result.txt"]))
    runs.finish(handle)

    runs.backend.cleanup(handle)
    runs.backend.cleanup(handle)

    assert Path(handle.data["results_dir"], "result.txt").read_text() == "kept\n"
    assert not Path(handle.data["run_dir"], ".lock").exists()
    assert runs.status(handle).state is RunState.SUCCEEDED


def test_created_from_settings_via_the_registry(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, grace_period_seconds=5.0)

    backend = registry.create("process", settings)

    assert isinstance(backend, ProcessBackend)
    assert backend.root == tmp_path / "runs" and backend.grace_period_seconds == 5.0


def test_cleanup_kills_a_run_that_still_runs(runs: Runs) -> None:
    handle = runs.submit(spec("leftover", ["python", "-c", WAIT_FOR_GO]))
    wait_for(lambda: len(live_group_members(handle.data["pid"])) == 2)

    runs.backend.cleanup(handle)

    wait_for(lambda: not live_group_members(handle.data["pid"]), timeout=5)
    assert runs.finish(handle).state in (RunState.KILLED, RunState.FAILED)


def test_damaged_exit_file_is_a_failure_not_an_error(runs: Runs) -> None:
    handle = runs.submit(spec("damaged", ["true"]))
    runs.finish(handle)
    Path(handle.data["run_dir"], "exit.json").write_text("{")

    status = runs.status(handle)

    assert status.state is RunState.FAILED and "unreadable exit.json" in status.reason


def test_pure_helpers() -> None:
    stat = parse_stat("42 (a) b (c)) S 1 40 40 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0")
    assert (stat.pid, stat.state, stat.pgrp, stat.start_ticks) == (42, "S", 40, 12345)
    assert whole_lines(b"a\nb\nc", 10, at_end=False) == b"a\nb\n"
    assert whole_lines(b"abc", 10, at_end=False) == b""
    assert whole_lines(b"abcdefghij", 10, at_end=False) == b"abcdefghij"
    assert whole_lines(b"a\nbc", 10, at_end=True) == b"a\nbc"
