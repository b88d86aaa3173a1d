"""SlurmBackend against a fake login node: the exact commands it sends, and what it makes
of the answers. The real cluster tests (test_engine_slurm.py) show the commands work."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO

import pytest

from jobyard.backends.base import Accelerator, Handle, Offsets, RunSpec, RunState
from jobyard.backends.errors import BackendUnavailable, ResultNotFound, SubmitRejected
from jobyard.backends.slurm.backend import SlurmBackend
from jobyard.backends.slurm.parse import poll_command

Answer = tuple[int, bytes, bytes]


class FakeShell:
    """Records every call; answers commands through ``respond``."""

    active_host: str | None = "login1:22"

    def __init__(self, respond: Callable[[str], Answer]) -> None:
        self.respond = respond
        self.commands: list[str] = []
        self.puts: list[dict[str, bytes]] = []
        self.reads: list[list[tuple[str, int, int]]] = []
        self.files: dict[str, bytes] = {}

    def run(self, command: str, timeout: float | None = None) -> Answer:
        self.commands.append(command)
        return self.respond(command)

    def sftp_put_many(self, files: Mapping[str, bytes]) -> None:
        self.puts.append(dict(files))

    def sftp_read_many(self, requests: Sequence[tuple[str, int, int]]) -> list[bytes]:
        self.reads.append(list(requests))
        return [self.files.get(path, b"")[offset : offset + n] for path, offset, n in requests]

    def sftp_walk(self, root: str) -> list[tuple[str, int, float]]:
        prefix = root + "/"
        return sorted(
            (p[len(prefix) :], len(d), 0.0) for p, d in self.files.items() if p.startswith(prefix)
        )

    @contextmanager
    def sftp_open(self, path: str) -> Iterator[IO[bytes]]:
        import io

        if path not in self.files:
            raise FileNotFoundError(path)
        yield io.BytesIO(self.files[path])

    def close(self) -> None:
        pass


def ok(text: str = "") -> Answer:
    return 0, text.encode(), b""


SPEC = RunSpec(
    job_id="j1",
    run=2,
    action="train",
    command=["python", "-m", "jobyard.workloads.classifier"],
    specs={"train": {"num_epochs": 2}},
    timeout_seconds=120,
    options={"backend_type": "slurm", "partition": "gpu"},
)


def backend(shell: FakeShell) -> SlurmBackend:
    return SlurmBackend(
        shell,
        user="alice",
        base_results_dir="/scratch/jy",
        python="/opt/py",
        grace_period_seconds=5,
    )


def test_submit_prepares_uploads_and_submits_in_three_round_trips() -> None:
    shell = FakeShell(lambda c: ok("4242\n") if c.startswith("sbatch") else ok())
    handle = backend(shell).submit(SPEC)
    assert shell.commands == [
        "mkdir -p /scratch/jy/j1/run-2 /scratch/jy/j1/results && "
        "squeue -h -t all -u alice --name=jy-j1-r2 -o '%i|%j|%T|%r'",
        "sbatch --parsable /scratch/jy/j1/run-2/job.sh",
    ]
    (files,) = shell.puts
    assert json.loads(files["/scratch/jy/j1/run-2/specs.json"]) == SPEC.specs
    script = files["/scratch/jy/j1/run-2/job.sh"].decode()
    assert "#SBATCH --partition=gpu\n" in script and "#SBATCH --time=3\n" in script
    assert script.endswith("exec /opt/py -m jobyard.workloads.classifier\n")
    assert handle.name == "jy-j1-r2"
    assert handle.data["slurm_job_id"] == "4242"
    assert handle.data["login_node"] == "login1:22"
    assert handle.data["results_dir"] == "/scratch/jy/j1/results"


def test_a_retried_submit_adopts_the_job_already_queued() -> None:
    shell = FakeShell(lambda c: ok("77|jy-j1-r2|RUNNING|None\n"))
    handle = backend(shell).submit(SPEC)
    assert handle.data["slurm_job_id"] == "77"
    assert len(shell.commands) == 1 and not shell.puts  # no second sbatch


def test_a_relative_base_dir_is_resolved_against_home_once() -> None:
    shell = FakeShell(lambda c: ok("/home/alice\n") if c == "pwd" else ok("5\n"))
    slurm = SlurmBackend(shell, user="alice", base_results_dir="runs")
    slurm.submit(SPEC)
    slurm.submit(SPEC)
    assert shell.commands.count("pwd") == 1
    assert shell.commands[1].startswith("mkdir -p /home/alice/runs/j1/run-2 ")


@pytest.mark.parametrize(
    ("stderr", "error"),
    [
        (b"sbatch: error: invalid partition specified: gpu", SubmitRejected),
        (
            b"sbatch: error: Unable to contact slurm controller (connect failure)",
            BackendUnavailable,
        ),
    ],
)
def test_sbatch_errors_are_permanent_or_transient(stderr: bytes, error: type[Exception]) -> None:
    shell = FakeShell(lambda c: (1, b"", stderr) if c.startswith("sbatch") else ok())
    with pytest.raises(error, match="login1:22"):
        backend(shell).submit(SPEC)


def handles(n: int) -> list[Handle]:
    return [
        Handle("slurm", f"jy-j{i}-r1", {"slurm_job_id": str(100 + i), "run_dir": f"/r/j{i}"})
        for i in range(n)
    ]


def test_poll_is_one_command_for_any_number_of_runs() -> None:
    hs = handles(100)
    queue = "".join(f"Q {100 + i}|jy-j{i}-r1|PENDING|Priority\n" for i in range(2, 100))
    answer = queue + "C JobId=100 JobName=jy-j0-r1 JobState=COMPLETED Reason=None ExitCode=0:0\n"
    answer += "A 101|FAILED|75:0\n"
    shell = FakeShell(lambda c: ok(answer))
    statuses = backend(shell).poll(hs)
    ids = [str(100 + i) for i in range(100)]
    assert shell.commands == [poll_command("alice", [h.name for h in hs], ids)]
    assert statuses["jy-j0-r1"].state is RunState.SUCCEEDED
    assert statuses["jy-j1-r1"].state is RunState.PAUSED  # from sacct: exit 75
    assert statuses["jy-j5-r1"].state is RunState.QUEUED
    assert statuses["jy-j5-r1"].reason == "pending: waiting behind higher-priority jobs (Priority)"


def test_a_job_slurm_forgot_is_lost_and_says_why() -> None:
    shell = FakeShell(lambda c: ok(""))
    (status,) = backend(shell).poll(handles(1)).values()
    assert status.state is RunState.LOST and "MinJobAge" in status.reason


def test_node_failure_is_a_transient_loss() -> None:
    line = "C JobId=100 JobName=jy-j0-r1 JobState=NODE_FAIL Reason=NodeDown ExitCode=0:0\n"
    (status,) = backend(FakeShell(lambda c: ok(line))).poll(handles(1)).values()
    assert status.state is RunState.LOST and status.transient
    assert status.reason == "node failure (NODE_FAIL)"


def test_poll_of_nothing_costs_nothing() -> None:
    shell = FakeShell(lambda c: ok())
    assert backend(shell).poll([]) == {}
    assert shell.commands == []


def test_output_is_read_in_one_sftp_batch_in_whole_lines() -> None:
    shell = FakeShell(lambda c: ok())
    hs = handles(3)
    shell.files = {"/r/j0/status.jsonl": b'{"a":1}\n{"b"', "/r/j0/output.log": b"hello"}
    out = backend(shell).read_output([(h, Offsets(0, 0)) for h in hs], 1024)
    assert len(shell.reads) == 1 and len(shell.reads[0]) == 6
    assert out["jy-j0-r1"].status == b'{"a":1}\n'  # the half line waits for its end
    assert out["jy-j0-r1"].log == b"hello"
    assert out["jy-j2-r1"].status == b""


@pytest.mark.parametrize(
    ("graceful", "command"),
    [
        (
            True,
            "scancel --state=PENDING 100; scancel --signal=TERM --full 100 2>/dev/null"
            " || scancel 100",
        ),
        (
            False,
            "scancel --state=PENDING 100; scancel --signal=KILL --full 100 2>/dev/null"
            " || scancel 100",
        ),
    ],
)
def test_stop_commands(graceful: bool, command: str) -> None:
    shell = FakeShell(lambda c: ok())
    backend(shell).stop(handles(1)[0], graceful=graceful)
    assert shell.commands == [command]


def test_stop_of_a_finished_job_is_quiet_but_a_dead_controller_is_retried() -> None:
    finished = FakeShell(lambda c: (1, b"", b"scancel: error: Invalid job id specified"))
    backend(finished).stop(handles(1)[0], graceful=True)
    down = FakeShell(lambda c: (1, b"", b"scancel: error: Unable to contact slurm controller"))
    with pytest.raises(BackendUnavailable):
        backend(down).stop(handles(1)[0], graceful=True)


def test_results_are_listed_and_opened_inside_the_results_dir_only() -> None:
    shell = FakeShell(lambda c: ok())
    shell.files = {"/s/j/results/model.npz": b"abc", "/s/j/results/c/e1.npz": b"d"}
    handle = Handle("slurm", "jy-j-r1", {"results_dir": "/s/j/results"})
    slurm = backend(shell)
    assert [(f.path, f.size) for f in slurm.list_results(handle)] == [
        ("c/e1.npz", 1),
        ("model.npz", 3),
    ]
    with slurm.open_result(handle, "model.npz") as f:
        assert f.read() == b"abc"
    with pytest.raises(ResultNotFound):
        slurm.open_result(handle, "../../etc/passwd")
    with pytest.raises(ResultNotFound):
        with slurm.open_result(handle, "missing.npz"):
            pass


def test_from_config_needs_a_key_and_known_hosts(settings) -> None:  # type: ignore[no-untyped-def]
    config = {"slurm_user": "alice", "slurm_hostname": ["h1"]}
    with pytest.raises(SubmitRejected, match="JOBYARD_SLURM_PRIVATE_KEY_FILE"):
        SlurmBackend.from_config(settings, config)


def test_commands_quote_what_they_are_given() -> None:
    shell = FakeShell(lambda c: ok("1\n"))
    SlurmBackend(shell, user="a b;", base_results_dir="/x").submit(SPEC)
    assert shlex.split(shell.commands[0])[5:11] == ["squeue", "-h", "-t", "all", "-u", "a b;"]


def test_a_base_dir_sbatch_cannot_take_is_refused_before_submitting() -> None:
    shell = FakeShell(lambda c: ok())
    with pytest.raises(SubmitRejected, match="sbatch mangles"):
        SlurmBackend(shell, user="a", base_results_dir="/x y").submit(SPEC)
    assert not any(c.startswith("sbatch") for c in shell.commands)


def test_accelerators_are_one_sinfo_of_every_partition() -> None:
    shell = FakeShell(lambda c: ok("debug*|(null)|2\ngpu|gpu:a100:4(S:0-1)|8\n"))
    assert backend(shell).accelerators() == [
        Accelerator("cpu", 0, "debug", 2),
        Accelerator("a100", 4, "gpu", 8),
    ]
    assert shell.commands == ["sinfo -h -o '%P|%G|%D'"]


def test_accelerators_of_an_unreachable_controller_are_transient() -> None:
    shell = FakeShell(lambda c: (1, b"", b"sinfo: error: Unable to contact slurm controller"))
    with pytest.raises(BackendUnavailable, match="sinfo on login1:22"):
        backend(shell).accelerators()
