"""squeue/scontrol parsing against output captured from SLURM 22.05, and the state table."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobyard.backends.base import RunState, RunStatus
from jobyard.backends.slurm.parse import (
    QueueEntry,
    addresses_command,
    parse_addresses,
    parse_exit_code,
    parse_scontrol,
    parse_squeue,
    run_state,
    scontrol_command,
    squeue_command,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "slurm"


def test_parse_squeue_golden() -> None:
    jobs = parse_squeue((DATA / "squeue.txt").read_text())
    assert jobs == {
        "jy-aaa-r1": QueueEntry("41", "RUNNING", "None"),
        "jy-bbb-r1": QueueEntry("42", "PENDING", "Resources"),  # the newest of two
        "jy-c|d-r1": QueueEntry("43", "COMPLETED", "None"),
        "jy-ddd-r2": QueueEntry("44", "FAILED", "NonZeroExitCode"),
    }


def test_parse_squeue_orders_ids_numerically() -> None:
    assert parse_squeue("10|n|RUNNING|None\n9|n|CANCELLED|None\n")["n"].job_id == "10"


def test_parse_squeue_empty_and_junk() -> None:
    assert parse_squeue("") == {}
    assert parse_squeue("squeue: error: Invalid user\n|x|y|z\n") == {}


def test_parse_scontrol_golden() -> None:
    jobs = parse_scontrol((DATA / "scontrol_show_job.txt").read_text())
    assert sorted(jobs) == ["1", "2"]
    assert jobs["1"]["JobState"] == "FAILED"
    assert jobs["1"]["ExitCode"] == "3:0"
    assert jobs["1"]["Reason"] == "NonZeroExitCode"
    assert jobs["1"]["TRES"] == "cpu=1,node=1,billing=1"
    assert jobs["1"]["ReqB:S:C:T"] == "0:0:*:*"
    assert jobs["1"]["Power"] == ""
    assert jobs["2"]["JobName"] == "a b|c"  # spaces inside a value
    assert jobs["2"]["JobState"] == "COMPLETED"
    assert jobs["2"]["ExitCode"] == "0:0"


def test_commands_are_shell_safe() -> None:
    cmd = squeue_command("jy user", ["jy-b-r1", "jy-a-r1", "jy-a-r1"])
    assert cmd == "squeue -h -t all -u 'jy user' --name=jy-a-r1,jy-b-r1 -o '%i|%j|%T|%r'"
    assert scontrol_command(["10", "9"]).startswith("for id in 9 10; do scontrol show job -o")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3:0", (3, 0)),
        ("0:15", (0, 15)),
        ("75:0", (75, 0)),
        (None, (None, None)),
        ("x", (None, None)),
    ],
)
def test_parse_exit_code(text: str | None, expected: tuple[int | None, int | None]) -> None:
    assert parse_exit_code(text) == expected


@pytest.mark.parametrize(
    ("state", "exit_code", "expected_state", "expected_code"),
    [
        ("PENDING", None, RunState.QUEUED, None),
        ("CONFIGURING", None, RunState.QUEUED, None),
        ("REQUEUED", "0:0", RunState.QUEUED, None),
        ("SUSPENDED", "0:0", RunState.QUEUED, None),
        ("RUNNING", "0:0", RunState.RUNNING, None),
        ("COMPLETING", "0:0", RunState.RUNNING, None),
        ("COMPLETED", "0:0", RunState.SUCCEEDED, 0),
        ("FAILED", "3:0", RunState.FAILED, 3),
        ("FAILED", "75:0", RunState.PAUSED, 75),  # scancel --signal=TERM --full, checkpointed
        ("FAILED", "0:9", RunState.KILLED, None),
        ("CANCELLED", "0:15", RunState.KILLED, None),
        ("CANCELLED by 0", "0:15", RunState.KILLED, None),
        ("CANCELLED", "75:0", RunState.PAUSED, 75),
        ("TIMEOUT", "75:0", RunState.FAILED, 75),  # a timeout is never resumable
        ("OUT_OF_MEMORY", "0:125", RunState.FAILED, 0),
        ("DEADLINE", "0:0", RunState.FAILED, 0),
        ("NODE_FAIL", "0:0", RunState.LOST, 0),
        ("PREEMPTED", "0:15", RunState.LOST, 0),
        ("BOOT_FAIL", "0:0", RunState.LOST, 0),
        ("SOMETHING_NEW", "0:0", RunState.LOST, 0),
    ],
)
def test_run_state_table(
    state: str, exit_code: str | None, expected_state: RunState, expected_code: int | None
) -> None:
    got = run_state(state, exit_code)
    assert (got.state, got.exit_code) == (expected_state, expected_code)


@pytest.mark.parametrize("state", ["NODE_FAIL", "PREEMPTED", "BOOT_FAIL"])
def test_retryable_failures_say_transient(state: str) -> None:
    status = run_state(state, "0:0")
    assert status.transient and status.state is RunState.LOST
    assert state in status.reason


def test_unknown_state_is_not_transient() -> None:
    assert not run_state("SOMETHING_NEW", None).transient


def test_pending_reason_is_shown() -> None:
    assert run_state("PENDING", None, "Resources") == RunStatus(
        RunState.QUEUED,
        None,
        "pending: waiting for free resources (Resources)",
    )
    assert run_state("PENDING", None, "Odd").reason == "pending: Odd"
    assert run_state("PENDING", None, "None").reason == "pending"
    assert run_state("TIMEOUT", "0:15").reason.startswith("timeout")


def test_server_addresses_are_read_per_run_and_unplaced_ones_left_out() -> None:
    command = addresses_command({"jy-a-r1": "/w/a/run-1/serving.addr", "jy-b-r2": "/w/it's"})
    assert "'/w/it'\"'\"'s'" in command  # quoted for the shell
    printed = (
        "jy-a-r1 10.0.0.7 41234\njy-b-r2 node2\ngarbage\n"
        "jy-c-r1 evil@host/x 80\njy-d-r1 node4 99999\njy-e-r1 fd00::7 8080\n"
    )
    assert parse_addresses(printed) == {
        "jy-a-r1": ("10.0.0.7", 41234),
        "jy-e-r1": ("fd00::7", 8080),
    }
