"""A local double of the Lepton workspace job API, stdlib only, for tests.

The routes are the ones the ``leptonai`` SDK 0.47 calls (relative to
``.../api/v2/workspaces/<ws>``):

    POST   /jobs                          create -> LeptonJob (409 if the id exists)
    GET    /jobs?page=&page_size=&query=  list -> {"jobs": [...]}; clients page until empty
    GET    /jobs/{id}                     one job (404 when unknown)
    PATCH  /jobs/{id}                     update; {"spec": {"stopped": true}} stops it
    DELETE /jobs/{id}                     delete (kills its replicas at once)
    GET    /jobs/{id}/replicas            [Replica]
    GET    /jobs/{id}/replicas/{rid}/log  text/plain, the whole log so far
    GET    /jobs/{id}/events              [LeptonEvent]
    GET    /logs?job=                     Loki-style streams
    GET    /dedicated-node-groups         [DedicatedNodeGroup] (``lep node list``)
    GET    /shapes?node_groups=&purpose=  [Shape] of those node groups (by id) that
                                          ``purpose`` may use (``lep node resource-shape``)

Every request needs ``Authorization: Bearer <token>`` (401 otherwise).

Each job's ``spec.container.command`` runs as a real local process group, so states, logs
and signals are real: ``Starting -> Running -> Completed | Failed``; a stop makes it
``Stopping`` while the container's first process gets SIGTERM (as from a container
runtime: PID 1 only; the whole container gets SIGKILL after ``grace_seconds``), then
``Stopped``. Beyond ``capacity`` running jobs the rest wait in ``Queueing``.

Two emulations stand in for the container: a leading ``python`` is this interpreter (the
image's), and ``path_map`` rewrites path prefixes in env values and command arguments,
playing the part of a volume the workspace mounts at the same path on every node.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.helpers import DoubleHTTPServer

JOB_ID = re.compile(r"[a-z][a-z0-9-]{0,35}")
ERROR_CODES = {400: "InvalidRequest", 401: "Unauthorized", 404: "NotFound", 409: "AlreadyExists"}


@dataclass(frozen=True)
class Shape:
    """A resource shape as a node group offers it: ``gpu.8xh100-sxm``, ``cpu.small`` ..."""

    name: str
    accelerator_type: str | None = None  # the GPU product, e.g. NVIDIA-H100-80GB-HBM3
    accelerator_num: int | None = None
    cpu: float = 4.0
    memory_in_mb: int = 16384
    listable_in: tuple[str, ...] = ("pod", "deployment", "job")

    def to_json(self, node_group_id: str) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": self.name,
            "description": self.name,
            "listable_in": list(self.listable_in),
            "cpu": self.cpu,
            "memory_in_mb": self.memory_in_mb,
            "ephemeral_storage_in_gb": 100,
            "node_group_id": node_group_id,
        }
        if self.accelerator_num:
            spec.update(
                accelerator_type=self.accelerator_type,
                accelerator_num=self.accelerator_num,
                accelerator_memory_in_mb=81920,
            )
        return {"metadata": {"id": self.name, "name": self.name}, "spec": spec}


@dataclass(frozen=True)
class NodeGroup:
    id: str
    name: str
    gpu_product: str | None = None
    ready_nodes: int = 1
    shapes: tuple[Shape, ...] = field(default_factory=tuple)

    def to_json(self, workspace: str) -> dict[str, Any]:
        return {
            "metadata": {"id": self.id, "name": self.name, "created_at": 1700000000000},
            "spec": {
                "workspaces": [workspace],
                "allocation_mode": "auto",
                "owner": "customer",
                "gpu_product": self.gpu_product,
                "desired_nodes": self.ready_nodes,
            },
            "status": {"ready_nodes": self.ready_nodes, "quota_enabled": False},
        }


class FakeLepton:
    def __init__(
        self,
        token: str = "test-token",
        workspace: str = "testws",
        capacity: int | None = None,
        path_map: Mapping[str, str] | None = None,
        grace_seconds: float = 30.0,
        node_groups: Sequence[NodeGroup] = (),
    ) -> None:
        self.token = token
        self.workspace = workspace
        self.node_groups = list(node_groups)
        self.capacity = capacity
        self.path_map = dict(path_map or {})
        self.grace_seconds = grace_seconds
        self.lock = threading.RLock()
        self.slots_freed = threading.Condition(self.lock)
        self.jobs: dict[str, dict[str, Any]] = {}
        self.replicas: dict[str, list[str]] = {}
        self.logs: dict[str, bytearray] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.requests: list[tuple[str, str, dict[str, Any], Any]] = []
        self.fail_next = 0  # answer that many requests with 503
        self.running = 0
        self.closed = False
        self.httpd = DoubleHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.httpd.daemon_threads = True
        port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{port}/api/v2/workspaces/{workspace}"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer._handle(self, "GET")

            def do_POST(self) -> None:
                outer._handle(self, "POST")

            def do_PATCH(self) -> None:
                outer._handle(self, "PATCH")

            def do_DELETE(self) -> None:
                outer._handle(self, "DELETE")

        return Handler

    def start(self) -> FakeLepton:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        with self.lock:
            self.closed = True  # nothing queued starts any more
            self.slots_freed.notify_all()
            procs = list(self.procs.values())
        for proc in procs:
            _kill(proc, signal.SIGKILL)
        for proc in procs:
            proc.wait()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- what tests look at ------------------------------------------------------------

    def calls(self, method: str, pattern: str) -> list[tuple[str, str, dict[str, Any], Any]]:
        """Requests whose method matches and whose path (after the workspace) matches."""
        prefix = f"/api/v2/workspaces/{self.workspace}"
        with self.lock:
            return [
                r
                for r in self.requests
                if r[0] == method and re.fullmatch(pattern, r[1][len(prefix) :])
            ]

    def state(self, job_id: str) -> str | None:
        with self.lock:
            job = self.jobs.get(job_id)
            return None if job is None else str(job["status"]["state"])

    # -- running a job -------------------------------------------------------------------

    def _translate(self, value: str) -> str:
        for prefix, local in self.path_map.items():
            if value == prefix or value.startswith(prefix.rstrip("/") + "/"):
                return local.rstrip("/") + value[len(prefix.rstrip("/")) :]
        return value

    def _command_and_env(self, spec: Mapping[str, Any], job_id: str) -> tuple[list[str], dict]:
        env = dict(os.environ)
        for item in spec.get("envs") or []:
            env[item["name"]] = self._translate(str(item.get("value", "")))
        env.update(LEPTON_JOB_NAME=job_id, LEPTON_JOB_TOTAL_WORKERS="1")
        command = [
            self._translate(str(a))
            for a in (spec.get("container") or {}).get("command") or ["true"]
        ]
        if command[0] == "python":
            command[0] = sys.executable
        return command, env

    def _wait_for_slot(self, status: dict[str, Any]) -> bool:
        """Hold the job in Queueing until a slot frees; False if it was stopped meanwhile."""
        with self.lock:
            while self.capacity is not None and self.running >= self.capacity:
                if status["state"] != "Queueing":
                    status["state"] = "Queueing"
                if status.get("stop_requested") or status.get("deleted") or self.closed:
                    return False
                self.slots_freed.wait(0.1)
            if status.get("stop_requested") or status.get("deleted") or self.closed:
                return False
            self.running += 1
            return True

    def _run_job(self, job_id: str) -> None:
        job = self.jobs[job_id]
        status = job["status"]
        if not self._wait_for_slot(status):
            with self.lock:
                if not status.get("deleted"):
                    status["state"] = "Stopped"
            return
        try:
            self._run_replica(job_id, job)
        finally:
            with self.lock:
                self.running -= 1
                self.slots_freed.notify_all()

    def _run_replica(self, job_id: str, job: dict[str, Any]) -> None:
        status = job["status"]
        replica = f"{job_id}-0-abcde"
        command, env = self._command_and_env(job["spec"], job_id)
        env["LEPTON_JOB_WORKER_INDEX"] = "0"
        with self.lock:
            self.replicas[job_id].append(replica)
            self.logs[replica] = bytearray()
            if status.get("stop_requested") or status.get("deleted"):
                status["state"] = "Stopped"
                return
            proc = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
            self.procs[replica] = proc
            status["state"] = "Running"
            status.update(active=1, ready=1)
        assert proc.stdout is not None
        for chunk in iter(lambda: proc.stdout.read1(4096), b""):  # type: ignore[union-attr]
            with self.lock:
                self.logs[replica] += chunk
        proc.stdout.close()
        returncode = proc.wait()
        with self.lock:
            status.update(active=0, ready=0, completion_time=int(time.time()))
            status["succeeded" if returncode == 0 else "failed"] += 1
            if status.get("deleted"):
                return
            if status.get("stop_requested"):
                status["state"] = "Stopped"
            else:
                status["state"] = "Completed" if returncode == 0 else "Failed"

    def _signal_replicas(self, job_id: str, signum: signal.Signals) -> None:
        """SIGKILL reaches every process of the container; any other signal only its
        first process, as a container runtime delivers a stop to PID 1 alone."""
        for replica in self.replicas.get(job_id, []):
            proc = self.procs.get(replica)
            if proc is not None:
                _kill(proc, signum, group=signum == signal.SIGKILL)

    def _stop(self, job_id: str) -> None:
        status = self.jobs[job_id]["status"]
        if status["state"] in ("Completed", "Failed", "Stopped"):
            return
        status["stop_requested"] = True
        if status["state"] in ("Queueing", "Starting") and not self.replicas[job_id]:
            status["state"] = "Stopped"
            return
        status["state"] = "Stopping"
        self._signal_replicas(job_id, signal.SIGTERM)
        timer = threading.Timer(
            self.grace_seconds, self._signal_replicas, args=(job_id, signal.SIGKILL)
        )
        timer.daemon = True
        timer.start()

    # -- HTTP --------------------------------------------------------------------------

    def _send(self, h: BaseHTTPRequestHandler, code: int, obj: Any, ctype: str = "") -> None:
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        h.send_response(code)
        h.send_header("Content-Type", ctype or "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _err(self, h: BaseHTTPRequestHandler, code: int, message: str) -> None:
        self._send(h, code, {"code": ERROR_CODES.get(code, "Error"), "message": message})

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(h.path)
        query = {k: v if len(v) > 1 else v[0] for k, v in parse_qs(url.query).items()}
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length)) if length else None
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return self._err(h, 401, "invalid token")
        prefix = f"/api/v2/workspaces/{self.workspace}"
        if not url.path.startswith(prefix):
            return self._err(h, 404, "unknown workspace")
        with self.lock:
            self.requests.append((method, url.path, query, body))
            if self.fail_next > 0:
                self.fail_next -= 1
                return self._err(h, 503, "upstream unavailable")
            return self._route(h, method, url.path[len(prefix) :].rstrip("/"), query, body)

    def _route(
        self, h: BaseHTTPRequestHandler, method: str, path: str, q: dict[str, Any], body: Any
    ) -> None:
        if path == "/jobs" and method == "POST":
            return self._create(h, body or {})
        if path == "/jobs" and method == "GET":
            return self._send(h, 200, {"jobs": self._list(q)})
        m = re.fullmatch(r"/jobs/([^/]+)(/replicas|/events|/replicas/([^/]+)/log)?", path)
        if m:
            return self._job_route(h, method, m.group(1), m.group(2), m.group(3), body)
        if path == "/logs" and method == "GET":
            return self._send(h, 200, self._loki(q))
        if path == "/dedicated-node-groups" and method == "GET":
            return self._send(h, 200, [g.to_json(self.workspace) for g in self.node_groups])
        if path == "/shapes" and method == "GET":
            return self._send(h, 200, self._shapes(q))
        return self._err(h, 404, f"no route {method} {path}")

    def _create(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        metadata = body.get("metadata") or {}
        job_id = metadata.get("id") or metadata.get("name")
        if not job_id or not JOB_ID.fullmatch(job_id):
            return self._err(h, 400, "invalid job name")
        if job_id in self.jobs:
            return self._err(h, 409, f"job {job_id} already exists")
        now = int(time.time() * 1000)
        job = {
            "metadata": {
                **metadata,
                "id": job_id,
                "name": job_id,
                "created_at": now,
                "version": 1,
                "created_by": "fake@local",
            },
            "spec": body.get("spec") or {},
            "status": {
                "job_name": job_id,
                "state": "Starting",
                "ready": 0,
                "active": 0,
                "failed": 0,
                "succeeded": 0,
                "creation_time": now // 1000,
                "job_history": [],
            },
        }
        self.jobs[job_id] = job
        self.replicas[job_id] = []
        threading.Thread(target=self._run_job, args=(job_id,), daemon=True).start()
        return self._send(h, 200, _public(job))

    def _list(self, q: dict[str, Any]) -> list[dict[str, Any]]:
        items = list(self.jobs.values())
        if q.get("q"):
            items = [j for j in items if q["q"] in j["metadata"]["id"]]
        if q.get("status"):
            wanted = q["status"] if isinstance(q["status"], list) else [q["status"]]
            items = [j for j in items if j["status"]["state"] in wanted]
        for term in str(q.get("query") or "").split(","):
            if term:
                key, _, value = term.partition("=")
                items = [j for j in items if (j["metadata"].get("labels") or {}).get(key) == value]
        page, size = int(q.get("page", 1)), int(q.get("page_size", 500))
        return [_public(j) for j in items[(page - 1) * size : page * size]]

    def _job_route(
        self,
        h: BaseHTTPRequestHandler,
        method: str,
        job_id: str,
        sub: str | None,
        replica: str | None,
        body: Any,
    ) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            return self._err(h, 404, f"job {job_id} not found")
        if sub is None and method == "GET":
            return self._send(h, 200, _public(job))
        if sub is None and method == "PATCH":
            spec = (body or {}).get("spec") or {}
            job["spec"].update({k: v for k, v in spec.items() if v is not None})
            if spec.get("stopped"):
                self._stop(job_id)
            return self._send(h, 200, _public(job))
        if sub is None and method == "DELETE":
            job["status"]["deleted"] = True
            self._signal_replicas(job_id, signal.SIGKILL)
            del self.jobs[job_id]
            return self._send(h, 200, {})
        if sub == "/replicas":
            return self._send(
                h,
                200,
                [
                    {
                        "id": r,
                        "metadata": {"id": r, "name": r},
                        "status": {"node": {"name": "fake-node", "id": "fake-node"}},
                    }
                    for r in self.replicas[job_id]
                ],
            )
        if sub == "/events":
            return self._send(h, 200, self._events(job))
        if replica is not None:
            if replica not in self.logs:
                return self._err(h, 404, f"replica {replica} not found")
            return self._send(h, 200, bytes(self.logs[replica]), "text/plain")
        return self._err(h, 404, f"no route {method} /jobs/{job_id}{sub or ''}")

    def _events(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        events = [{"type": "Normal", "reason": "Created", "count": 1, "last_observed_time": now}]
        if job["status"]["state"] == "Queueing":
            events.append(
                {
                    "type": "Warning",
                    "reason": "InsufficientCapacity",
                    "count": 1,
                    "last_observed_time": now,
                }
            )
        return events

    def _shapes(self, q: dict[str, Any]) -> list[dict[str, Any]]:
        wanted = str(q["node_groups"]).split(",") if q.get("node_groups") else None
        purpose = q.get("purpose")
        return [
            shape.to_json(group.id)
            for group in self.node_groups
            if wanted is None or group.id in wanted
            for shape in group.shapes
            if purpose is None or purpose in shape.listable_in
        ]

    def _loki(self, q: dict[str, Any]) -> dict[str, Any]:
        job_id = q.get("job")
        replicas = [q["replica"]] if q.get("replica") else self.replicas.get(str(job_id), [])
        result = [
            {
                "stream": {"job": job_id, "replica": r},
                "values": [
                    [str(time.time_ns()), line]
                    for line in bytes(self.logs.get(r, b"")).decode(errors="replace").splitlines()
                ],
            }
            for r in replicas
        ]
        return {"status": "success", "data": {"resultType": "streams", "result": result}}


def _public(job: dict[str, Any]) -> dict[str, Any]:
    """The job as the API shows it: without the double's own bookkeeping."""
    status = {k: v for k, v in job["status"].items() if k not in ("stop_requested", "deleted")}
    return {**job, "status": status}


def _kill(proc: subprocess.Popen[bytes], signum: signal.Signals, group: bool = True) -> None:
    if proc.poll() is None:
        try:
            if group:
                os.killpg(proc.pid, signum)
            else:
                proc.send_signal(signum)
        except ProcessLookupError:
            pass
