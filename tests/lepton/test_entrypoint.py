"""The in-container wrapper, run as a real process in front of a small workload."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from jobyard.backends.lepton.stream import exit_code, split_log

WORKLOAD = textwrap.dedent(
    """
    import json, os, sys
    spec = json.load(open(os.environ["JY_SPECS_FILE"]))
    print("specs", spec["train"]["num_epochs"], "leaked" if "JY_SPECS_JSON" in os.environ else "")
    with open(os.environ["JY_STATUS_FILE"], "a") as fh:
        fh.write('{"seq": 1, "status": "STARTED"}\\n')
        fh.write('{"seq": 2, "status": "FAILURE"}')
    print("to stderr", file=sys.stderr)
    print("@@jobyard:exit@@ 0")
    sys.exit(3)
    """
)

PAUSING = textwrap.dedent(
    """
    import os, signal, sys, time
    def on_term(signum, frame):
        with open(os.environ["JY_STATUS_FILE"], "a") as fh:
            fh.write('{"seq": 1, "status": "PAUSED"}\\n')
        sys.exit(75)
    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    time.sleep(30)
    """
)


def _start(tmp_path: Path, script: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        PYTHONUNBUFFERED="1",  # as the rendered job sets it: lines in the order written
        JY_SPECS_JSON=json.dumps({"train": {"num_epochs": 7}}),
        JY_SPECS_FILE=str(tmp_path / "run-1" / "specs.json"),
        JY_STATUS_FILE=str(tmp_path / "run-1" / "status.jsonl"),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "jobyard.backends.lepton.entrypoint", "--", "python", "-c", script],
        env=env,
        stdout=subprocess.PIPE,
    )


def test_specs_arrive_as_a_file_and_status_and_exit_code_come_back_in_the_log(tmp_path):
    proc = _start(tmp_path, WORKLOAD)
    raw, _ = proc.communicate(timeout=30)
    assert proc.returncode == 3
    status, log = split_log(raw, complete=True)
    assert status == b'{"seq": 1, "status": "STARTED"}\n{"seq": 2, "status": "FAILURE"}\n'
    assert log.splitlines() == [b"specs 7 ", b"to stderr", b" @@jobyard:exit@@ 0"]
    assert exit_code(raw) == 3  # the workload's look-alike line did not count


def test_sigterm_reaches_the_workload_which_checkpoints_and_exits_75(tmp_path):
    proc = _start(tmp_path, PAUSING)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGTERM)  # Lepton signals PID 1 only: the wrapper
    rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 75
    status, _ = split_log(rest, complete=True)
    assert b'"PAUSED"' in status
    assert exit_code(rest) == 75


def test_a_command_that_cannot_start_reports_127(tmp_path):
    env = dict(os.environ, JY_STATUS_FILE=str(tmp_path / "s.jsonl"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobyard.backends.lepton.entrypoint",
            "--",
            str(tmp_path / "nothing"),
        ],
        env=env,
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == 127
    assert exit_code(proc.stdout) == 127
    assert b"cannot execute" in split_log(proc.stdout, complete=True)[1]
