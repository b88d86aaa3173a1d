"""Against the real cluster: SSH with host-key checking, failover, sbatch → squeue/scontrol."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from jobyard.backends.base import RunSpec, RunState, RunStatus
from jobyard.backends.slurm.parse import (
    parse_scontrol,
    parse_squeue,
    run_state,
    scancel_command,
    scontrol_command,
    squeue_command,
)
from jobyard.backends.slurm.sbatch import render_sbatch
from jobyard.backends.slurm.ssh import HostKeyRejected, SshRunner
from tests.helpers import literal
from tests.slurm.cluster import SlurmCluster, free_ports

pytestmark = pytest.mark.integration

FINISHED_WAIT = 60.0


def _check(runner: SshRunner, command: str) -> str:
    status, out, err = runner.run(command, timeout=30)
    assert status == 0, f"{command!r} exited {status}: {err.decode()}"
    return out.decode()


def test_sinfo_through_sshd(slurm_cluster: SlurmCluster, ssh_runner: SshRunner) -> None:
    out = _check(ssh_runner, "sinfo -h -o '%P %T'")
    assert out.split() == ["debug*", "idle"] or "debug*" in out
    assert ssh_runner.active_host == slurm_cluster.address
    assert ssh_runner.round_trips == 1
    _check(ssh_runner, "true")
    assert ssh_runner.round_trips == 2  # the connection is reused


def test_unknown_host_key_is_refused(slurm_cluster: SlurmCluster) -> None:
    with slurm_cluster.runner(known_hosts="") as runner:
        with pytest.raises(HostKeyRejected, match=slurm_cluster.address):
            runner.run("true")


def test_changed_host_key_is_refused(slurm_cluster: SlurmCluster) -> None:
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    public = other.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    wrong = f"[{slurm_cluster.host}]:{slurm_cluster.port} {public.decode()}\n"
    with slurm_cluster.runner(known_hosts=wrong) as runner:
        with pytest.raises(HostKeyRejected, match=f"{slurm_cluster.address} changed"):
            runner.run("true")


def test_failover_to_the_next_host(slurm_cluster: SlurmCluster) -> None:
    (closed,) = free_ports(1)
    hosts = [f"127.0.0.1:{closed}", slurm_cluster.address]
    with slurm_cluster.runner(hosts=hosts) as runner:
        assert _check(runner, "echo $SLURM_CONF").strip() == str(slurm_cluster.slurm_conf)
        assert runner.active_host == slurm_cluster.address
        _check(runner, "true")  # sticks to the host that answered
        assert runner.active_host == slurm_cluster.address
        assert runner.round_trips == 2


def test_dead_connection_is_replaced(ssh_runner: SshRunner) -> None:
    _check(ssh_runner, "true")
    for client in ssh_runner._clients.values():
        transport = client.get_transport()
        assert transport is not None
        transport.close()  # as if the login node dropped us
    assert _check(ssh_runner, "echo again").strip() == "again"
    assert ssh_runner.round_trips == 2


def test_sftp_round_trip(slurm_cluster: SlurmCluster, ssh_runner: SshRunner) -> None:
    path = f"{slurm_cluster.work}/sftp-{time.monotonic_ns()}.bin"
    data = bytes(range(256)) * 1024
    ssh_runner.sftp_put_bytes(path, data)
    before = ssh_runner.round_trips
    got = ssh_runner.sftp_read_many([(path, 0, 10), (path, 1000, 10**9), (path + ".nope", 0, 10)])
    assert ssh_runner.round_trips == before + 1  # one SFTP batch
    assert got == [data[:10], data[1000:], b""]
    assert ssh_runner.sftp_read_from(path, len(data), 10) == b""


# -- sbatch through SSH ----------------------------------------------------------------


def _python(runner: SshRunner) -> str:
    return _check(runner, "command -v python3").strip()


def _submit(cluster: SlurmCluster, runner: SshRunner, spec: RunSpec) -> tuple[str, str]:
    """Upload specs + script in one SFTP batch, sbatch it; return (job id, run dir)."""
    root = f"{cluster.work}/{spec.job_id}"
    run_dir, results_dir = f"{root}/run-{spec.run}", f"{root}/results"
    _check(runner, f"mkdir -p {shlex.quote(run_dir)} {shlex.quote(results_dir)}")
    script = render_sbatch(
        spec,
        results_dir=results_dir,
        run_dir=run_dir,
        partition=cluster.partition,
        python=_python(runner),
    )
    runner.sftp_put_many(
        {
            f"{run_dir}/specs.json": json.dumps(spec.specs).encode(),
            f"{run_dir}/job.sh": script.encode(),
        }
    )
    out = _check(runner, f"sbatch --parsable {shlex.quote(run_dir)}/job.sh")
    return out.strip().split(";")[0], run_dir


def _wait_finished(
    cluster: SlurmCluster, runner: SshRunner, names: list[str]
) -> dict[str, RunStatus]:
    """Poll like the backend will: one squeue for all names, one scontrol for the finished."""
    deadline = time.monotonic() + FINISHED_WAIT
    seen: dict[str, list[str]] = {name: [] for name in names}
    while time.monotonic() < deadline:
        before = runner.round_trips
        queue = parse_squeue(_check(runner, squeue_command(cluster.user, names)))
        assert runner.round_trips == before + 1
        for name, entry in queue.items():
            if not seen[name] or seen[name][-1] != entry.state:
                seen[name].append(entry.state)
        states = {n: run_state(e.state, None, e.reason) for n, e in queue.items()}
        if len(states) == len(names) and all(s.state.finished for s in states.values()):
            ids = {queue[n].job_id: n for n in names}
            details = parse_scontrol(_check(runner, scontrol_command(ids)))
            assert runner.round_trips == before + 2
            return {
                ids[i]: run_state(f["JobState"], f.get("ExitCode"), f.get("Reason", ""))
                for i, f in details.items()
            }
        time.sleep(0.3)
    raise AssertionError(f"runs not finished after {FINISHED_WAIT}s: {seen}")


def _spec(job_id: str, command: list[str]) -> RunSpec:
    return RunSpec(
        job_id=job_id,
        run=1,
        action="train",
        command=literal(command),
        specs={"train": {"num_epochs": 1}},
        timeout_seconds=120,
    )


def test_jobs_run_to_completed_and_failed(
    slurm_cluster: SlurmCluster, ssh_runner: SshRunner
) -> None:
    tag = f"t{time.monotonic_ns()}"
    ok_code = (
        "import json, os, pathlib\n"
        "spec = json.load(open(os.environ['JY_SPECS_FILE']))\n"
        "print('spec', spec['train']['num_epochs'], 'cwd', os.getcwd(), flush=True)\n"
        "with open(os.environ['JY_STATUS_FILE'], 'a') as f:\n"
        "    f.write(json.dumps({'seq': 1, 'status': 'SUCCESS', 'run': os.environ['JY_RUN']}))\n"
        "    f.write('\\n')\n"
    )
    ok = _spec(f"{tag}-ok", ["python", "-c", ok_code])
    bad = _spec(f"{tag}-bad", ["/bin/sh", "-c", "echo failing >&2; exit 3"])
    _, ok_dir = _submit(slurm_cluster, ssh_runner, ok)
    _, bad_dir = _submit(slurm_cluster, ssh_runner, bad)

    finished = _wait_finished(slurm_cluster, ssh_runner, [ok.name, bad.name])

    assert (finished[ok.name].state, finished[ok.name].exit_code) == (RunState.SUCCEEDED, 0)
    assert (finished[bad.name].state, finished[bad.name].exit_code) == (RunState.FAILED, 3)
    before = ssh_runner.round_trips
    log, status, bad_log = ssh_runner.sftp_read_many(
        [
            (f"{ok_dir}/output.log", 0, 1 << 20),
            (f"{ok_dir}/status.jsonl", 0, 1 << 20),
            (f"{bad_dir}/output.log", 0, 1 << 20),
        ]
    )
    assert ssh_runner.round_trips == before + 1
    assert log.decode() == f"spec 1 cwd {slurm_cluster.work}/{ok.job_id}/results\n"
    assert json.loads(status) == {"seq": 1, "status": "SUCCESS", "run": "1"}
    assert bad_log == b"failing\n"
    assert ssh_runner.sftp_read_from(f"{ok_dir}/output.log", 5, 1) == b"1"


def test_graceful_stop_reaches_the_workload(
    slurm_cluster: SlurmCluster, ssh_runner: SshRunner
) -> None:
    """``scancel --signal=TERM --full`` reaches the exec'd workload, which exits 75: PAUSED."""
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: (print('got TERM', flush=True), sys.exit(75)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    spec = _spec(f"t{time.monotonic_ns()}-pause", ["python", "-c", code])
    job_id, run_dir = _submit(slurm_cluster, ssh_runner, spec)
    deadline = time.monotonic() + 30
    while ssh_runner.sftp_read_from(f"{run_dir}/output.log", 0, 100) != b"ready\n":
        assert time.monotonic() < deadline, "workload never started"
        time.sleep(0.2)
    _check(ssh_runner, f"scancel --signal=TERM --full {job_id}")

    finished = _wait_finished(slurm_cluster, ssh_runner, [spec.name])

    assert (finished[spec.name].state, finished[spec.name].exit_code) == (RunState.PAUSED, 75)
    log = ssh_runner.sftp_read_from(f"{run_dir}/output.log", 0, 1000)
    assert log.startswith(b"ready\n")
    assert b"got TERM\n" in log  # slurmstepd adds its own "*** JOB n CANCELLED ***" line


def test_a_pending_job_is_cancelled_at_once_by_a_graceful_stop(
    slurm_cluster: SlurmCluster, ssh_runner: SshRunner
) -> None:
    """``scancel --signal`` of a pending job waits for it to start (SLURM 22.05): the stop
    command cancels a pending job first, in well under the SSH command timeout."""
    spec = _spec(f"t{time.monotonic_ns()}-later", ["sleep", "60"])
    root = f"{slurm_cluster.work}/{spec.job_id}"
    run_dir = f"{root}/run-1"
    script = render_sbatch(
        spec,
        results_dir=f"{root}/results",
        run_dir=run_dir,
        partition=slurm_cluster.partition,
        python=_python(ssh_runner),
    )
    _check(ssh_runner, f"mkdir -p {shlex.quote(run_dir)} {shlex.quote(root)}/results")
    ssh_runner.sftp_put_many({f"{run_dir}/job.sh": script.encode()})
    job_id = _check(ssh_runner, f"sbatch --parsable --begin=now+3600 {run_dir}/job.sh")
    job_id = job_id.strip().split(";")[0]
    assert _check(ssh_runner, f"squeue -h -j {job_id} -o %T").strip() == "PENDING"
    started = time.monotonic()
    ssh_runner.run(scancel_command(job_id, graceful=True), timeout=30)
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 10
    while _check(ssh_runner, f"squeue -h -t all -j {job_id} -o %T").strip() != "CANCELLED":
        assert time.monotonic() < deadline, "the pending job was not cancelled"
        time.sleep(0.2)


def test_cluster_env_points_at_real_files(slurm_cluster: SlurmCluster) -> None:
    for path in (slurm_cluster.private_key, slurm_cluster.known_hosts, slurm_cluster.slurm_conf):
        assert Path(path).is_file()


def test_a_tunnel_over_the_login_node_reaches_a_server_and_checks_host_keys(
    slurm_cluster: SlurmCluster,
) -> None:
    """What the API and the worker use to reach a model server on a compute node."""
    import http.server
    import threading
    import urllib.error
    import urllib.request

    from jobyard.backends.slurm import tunnel

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(f"hello {self.path}".encode())

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with slurm_cluster.runner() as runner:
            local = tunnel.local_url(runner, url)
            assert local != url and local.startswith("http://127.0.0.1:")
            for _ in range(3):  # one tunnel, many connections
                with urllib.request.urlopen(local + "/health", timeout=10) as answer:
                    assert answer.read() == b"hello /health"
            assert tunnel.local_url(runner, url) == local  # kept for the next caller
        with slurm_cluster.runner(known_hosts="") as stranger:  # the server still answers
            refused = tunnel.local_url(stranger, url)
            with pytest.raises((urllib.error.URLError, ConnectionError)):
                urllib.request.urlopen(refused + "/health", timeout=10)
        server.shutdown()
        server.server_close()
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # the login node refused
            urllib.request.urlopen(local + "/health", timeout=10)
    finally:
        server.server_close()
        tunnel.close_all()
