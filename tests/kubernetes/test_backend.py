"""The backend against the API server double, through the official client."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from jobyard.backends.base import Offsets, RunSpec, RunState
from jobyard.backends.errors import BackendUnavailable, ResultNotFound, SubmitRejected
from jobyard.backends.kubernetes.backend import KubernetesBackend
from jobyard.schemas.settings import Settings
from jobyard.workloads import specs as reference_specs
from tests.helpers import wait_for

pytestmark = pytest.mark.integration


def train(epochs=3, pace=0.0, **changes) -> RunSpec:
    specs = reference_specs.default_spec("train")
    specs["train"].update(num_epochs=epochs, min_epoch_seconds=pace)
    fields = dict(
        job_id=str(uuid.uuid4()),
        run=1,
        action="train",
        command=("python", "-m", "jobyard.workloads.classifier"),
        specs=specs,
    )
    return RunSpec(**{**fields, **changes})


def sleeper(seconds=30, **changes) -> RunSpec:
    return train(command=("sleep", str(seconds)), **changes)


def until_finished(backend, handle, timeout=30):
    return wait_for(lambda: _finished(backend, handle), timeout, f"{handle.name} finished")


def _finished(backend, handle):
    status = backend.poll([handle])[handle.name]
    return status if status.state.finished else None


def status_events(backend, handle):
    path = Path(handle.data["run_dir"]) / "status.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def drain(backend, handle, max_bytes):
    """Read output the way reconcile does, until the run ended and nothing is left."""
    offsets, status, log = Offsets(), b"", b""
    # a minute of ticks, each a real 0.1 s (wait_for returns at once on a true check, so
    # a count of loops was a few seconds on a fast machine and too few on a loaded one)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = backend.poll([handle])[handle.name].state
        out = backend.read_output([(handle, offsets)], max_bytes)[handle.name]
        assert out.status == b"" or out.status.endswith(b"\n"), out.status
        status, log = status + out.status, log + out.log
        offsets = Offsets(offsets.status + len(out.status), offsets.log + len(out.log))
        if state.finished and not out.status and not out.log:
            return state, status, log
        time.sleep(0.1)
    raise AssertionError("output never drained")


def test_train_succeeds_and_its_output_is_read_in_pieces_exactly_once(backend, fake):
    handle = backend.submit(train(epochs=3, pace=0.2))
    state, status, log = drain(backend, handle, max_bytes=700)
    assert state is RunState.SUCCEEDED
    assert status == (Path(handle.data["run_dir"]) / "status.jsonl").read_bytes()
    pod = next(iter(fake.logs))
    assert log == bytes(fake.logs[pod]) and b"epoch 3/3" in log
    events = [json.loads(line) for line in status.splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["status"] == "SUCCESS"


def test_a_derived_run_reads_its_parents_results(backend):
    parent = backend.submit(train(epochs=2))
    assert until_finished(backend, parent).state is RunState.SUCCEEDED
    evaluate = RunSpec(
        job_id=str(uuid.uuid4()),
        run=1,
        action="evaluate",
        command=("python", "-m", "jobyard.workloads.classifier"),
        specs=reference_specs.default_spec("evaluate"),
        parent=parent,
    )
    handle = backend.submit(evaluate)
    assert until_finished(backend, handle).state is RunState.SUCCEEDED
    assert any(e.get("status") == "SUCCESS" for e in status_events(backend, handle))


def test_submit_twice_starts_one_job(backend, fake):
    spec = sleeper()
    first, second = backend.submit(spec), backend.submit(spec)
    assert first == second
    assert fake.created == [spec.name] and fake.count("POST", "jobs") == 2


def test_a_job_by_our_name_made_for_another_job_is_refused(backend, fake):
    spec = sleeper()
    backend.submit(spec)
    other = sleeper(job_id=str(uuid.uuid4()))
    stranger = RunSpec(**{**other.__dict__, "job_id": spec.job_id})
    fake.jobs[("default", spec.name)]["metadata"]["annotations"]["jobyard.io/job-id"] = "x"
    with pytest.raises(SubmitRejected, match="not made for job"):
        backend.submit(stranger)


def test_graceful_stop_deletes_the_pod_and_the_run_pauses_with_a_checkpoint(backend, fake):
    handle = backend.submit(train(epochs=50, pace=0.3))
    wait_for(lambda: any("epoch" in e for e in status_events(backend, handle)), 30, "epoch 1")
    backend.stop(handle, graceful=True)
    status = until_finished(backend, handle)
    assert (status.state, status.exit_code) == (RunState.PAUSED, 75)
    assert status_events(backend, handle)[-1]["status"] == "PAUSED"
    assert (Path(handle.data["results_dir"]) / "model_latest.npz").exists()
    assert not fake.pods  # the deleted pod is gone; the Job's condition told "paused"
    job = fake.jobs[("default", handle.name)]
    assert job["status"]["conditions"][-1]["reason"] == "PodFailurePolicy"


def test_abrupt_stop_kills_at_once_and_deletes_the_job(backend, fake):
    handle = backend.submit(sleeper(60))
    wait_for(lambda: backend.poll([handle])[handle.name].state is RunState.RUNNING, 20, "run")
    procs = list(fake.procs.values())
    backend.stop(handle, graceful=False)
    assert until_finished(backend, handle, timeout=10).state is RunState.LOST
    wait_for(lambda: all(p.poll() is not None for p in procs), 10, "process killed")
    assert procs[0].returncode == -9


def test_the_clusters_own_deadline_ends_a_run_as_a_timeout(backend):
    handle = backend.submit(sleeper(60, timeout_seconds=1))
    status = until_finished(backend, handle, timeout=20)
    assert status.state is RunState.KILLED
    assert "timeout: activeDeadlineSeconds=1" in status.reason


def unschedulable(backend, handle):
    status = backend.poll([handle])[handle.name]
    return status.reason.startswith("unschedulable: ") and status


def test_a_pending_run_says_it_needs_a_gpu_no_node_has(backend):
    handle = backend.submit(sleeper(options={"num_gpus": 1}))
    status = wait_for(lambda: unschedulable(backend, handle), 10, "unschedulable")
    assert status.state is RunState.QUEUED
    assert "Insufficient nvidia.com/gpu" in status.reason


def test_a_pending_run_says_no_node_matches_its_selector(kube_settings):
    backend = KubernetesBackend.from_config(
        kube_settings.replace(kubernetes_node_selector="pool=a100"), {}
    )
    handle = backend.submit(sleeper())
    status = wait_for(lambda: unschedulable(backend, handle), 10, "unschedulable")
    assert "0/1 nodes are available: 1 node(s) didn't match" in status.reason
    backend.close()


def test_a_pending_run_says_its_image_cannot_be_pulled(kube_settings):
    settings = kube_settings.replace(kubernetes_default_image="registry.invalid/jobyard:0")
    backend = KubernetesBackend.from_config(settings, {})
    handle = backend.submit(sleeper())

    def backing_off():
        status = backend.poll([handle])[handle.name]
        assert status.state is RunState.QUEUED
        return "ImagePullBackOff" in status.reason and status

    status = wait_for(backing_off, 10, "ImagePullBackOff")
    assert "cannot pull image registry.invalid/jobyard:0" in status.reason
    backend.close()


def test_one_hundred_runs_cost_one_list_of_jobs_and_one_of_pods(backend, fake):
    handles = [backend.submit(sleeper(60)) for _ in range(100)]
    wait_for(lambda: len(fake.procs) == 100, 60, "100 pods running")
    fake.requests.clear()
    statuses = backend.poll(handles)
    outputs = backend.read_output([(h, Offsets()) for h in handles], 1024)
    assert {s.state for s in statuses.values()} == {RunState.RUNNING}
    assert len(outputs) == 100
    assert fake.count("GET", "jobs") == 1 and fake.count("GET", "pods") == 1
    assert fake.count("GET", "jobs", collection=False) == 0
    logs = [r for r in fake.requests if r.path.endswith("/log")]
    assert len(logs) == 100 and len(fake.requests) == 102
    for handle in handles:
        backend.cleanup(handle)
    assert not fake.jobs


def test_cleanup_deletes_the_job_and_keeps_the_results(backend, fake):
    handle = backend.submit(train(epochs=1))
    until_finished(backend, handle)
    backend.cleanup(handle)
    backend.cleanup(handle)  # twice is harmless
    assert not fake.jobs and not fake.pods
    files = {f.path for f in backend.list_results(handle)}
    assert {"model_latest.npz", "train_summary.json"} <= files
    with backend.open_result(handle, "train_summary.json") as fh:
        assert json.load(fh)
    with pytest.raises(ResultNotFound):
        backend.open_result(handle, "../run-1/specs.json")


def test_a_wrong_token_is_a_clear_permanent_error(fake, tmp_path, kube_settings):
    kubeconfig = fake.write_kubeconfig(tmp_path, token="wrong")
    backend = KubernetesBackend.from_config(
        kube_settings.replace(kubernetes_kubeconfig=kubeconfig), {}
    )
    with pytest.raises(
        SubmitRejected, match=r"rejected jobyard's credentials \(401 Unauthorized\)"
    ):
        backend.submit(sleeper())
    assert not fake.jobs
    backend.close()


def test_an_unreachable_api_server_is_transient(backend, fake):
    handle = backend.submit(sleeper())
    fake.stop()
    with pytest.raises(BackendUnavailable, match="cannot reach the Kubernetes API server"):
        backend.poll([handle])


def test_a_missing_kubeconfig_is_reported_at_construction(tmp_path):
    settings = Settings(kubernetes_kubeconfig=tmp_path / "nope")
    with pytest.raises(SubmitRejected, match="cannot configure the Kubernetes client"):
        KubernetesBackend.from_config(settings, {})


def test_a_worker_without_the_results_volume_refuses_to_submit(kube_settings, tmp_path):
    settings = kube_settings.replace(kubernetes_results_dir=tmp_path / "not-mounted")
    backend = KubernetesBackend.from_config(settings, {})
    with pytest.raises(SubmitRejected, match="results volume is not mounted"):
        backend.submit(sleeper())
    assert not (tmp_path / "not-mounted").exists()
    backend.close()


def test_the_look_after_a_submit_lists_only_that_runs_objects(backend, fake):
    """Dispatch polls the run it just submitted: a selector of that run, so its cost does
    not grow with the pods running; what reconcile saw of the others is kept."""
    handles = [backend.submit(sleeper(60)) for _ in range(3)]
    wait_for(lambda: len(fake.procs) == 3, 60, "3 pods running")
    backend.poll(handles)
    fake.requests.clear()
    status = backend.poll([handles[0]])[handles[0].name]
    assert status.state is RunState.RUNNING
    lists = [r for r in fake.requests if r.method == "GET"]
    assert len(lists) == 2
    assert all(f"jobyard.io/run-name={handles[0].name}" in r.query["labelSelector"] for r in lists)
    fake.requests.clear()
    outputs = backend.read_output([(h, Offsets()) for h in handles], 1024)
    assert len(outputs) == 3
    assert fake.count("GET", "jobs") == 0 and fake.count("GET", "pods") == 0  # no re-list
    for handle in handles:
        backend.cleanup(handle)


def test_a_model_server_is_a_deployment_and_a_service_and_a_crash_is_reported(backend, fake):
    """The serve action: a Deployment of one pod and a ClusterIP Service; the container's
    first exit ends the run (Kubernetes restarts it in the pod, jobyard counts it); a
    stop deletes both, and the pod goes with them."""
    base = train(command=("python", "-m", "http.server", "{port}", "--bind", "{host}"))
    spec = RunSpec(**{**base.__dict__, "action": "serve"})
    endpoint = backend.serving_endpoint(spec)
    env = {"JY_SERVE_HOST": endpoint.bind_host, "JY_SERVE_PORT": str(endpoint.port)}
    spec = RunSpec(**{**spec.__dict__, "env": env})
    handle = backend.submit(spec)
    assert handle.data["kind"] == "server"
    assert handle.data["serving_url"] == f"http://127.0.0.1:{endpoint.port}"
    ((_, name),) = fake.deployments
    assert name == spec.name and [n for _, n in fake.services] == [spec.name]
    service = next(iter(fake.services.values()))
    assert service["spec"]["ports"][0]["targetPort"] == endpoint.port
    assert fake.count("POST", "jobs") == 0  # no batch Job for a server
    wait_for(lambda: backend.poll([handle])[handle.name].state is RunState.RUNNING, 30, "up")
    wait_for(lambda: _answers(handle.data["serving_url"]), 30, "the server answers")

    (proc,) = fake.procs.values()
    proc.kill()
    failed = until_finished(backend, handle)
    assert failed.state is RunState.FAILED and "Kubernetes restarted it" in failed.reason
    (pod,) = fake.pods.values()
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 1  # the same pod

    backend.stop(handle, graceful=True)
    assert not fake.deployments and not fake.services
    wait_for(lambda: not fake.pods, 30, "the pod gone")
    assert backend.poll([handle])[handle.name].state is RunState.LOST
    backend.cleanup(handle)  # already gone: not an error


def _answers(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False
