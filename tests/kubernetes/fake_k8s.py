"""A Kubernetes API server double for the backend's tests, driven by the official client.

No kube-apiserver or kubelet can run on the test machines, so this stdlib HTTP server
answers the batch/v1 Job and v1 Pod calls the backend makes, with complete objects (the
client validates what it reads), and plays the controllers behind them for real
(``fake_cluster``):

- **job controller**: one pod per Job (``backoffLimit`` and ``podFailurePolicy`` with
  ``onExitCodes`` rules honoured), ``activeDeadlineSeconds`` enforced (pods get SIGTERM,
  the Job fails with ``DeadlineExceeded``), conditions and messages worded as Kubernetes
  words them;
- **scheduler**: ``nodes`` with labels, a GPU count and other allocatable resources, maybe
  cordoned; a pod whose node selector or GPU request fits none stays Pending with
  ``PodScheduled=False`` / ``Unschedulable``. The nodes are served as kubelets register
  them (``fake_nodes``; ``GET /api/v1/nodes``, with ``labelSelector``);
- **kubelet**: images under ``registry.invalid/`` cannot be pulled (``ErrImagePull``, then
  ``ImagePullBackOff``); others are "pulled" (``ContainerCreating`` for ``pull_seconds``)
  and the container's ``command`` runs as a local process group, with only its ``env``
  (plus ``PATH``), in its ``workingDir``. A command starting with ``python`` runs the test
  interpreter: the fake node's python is the one the tests run under. Deleting a pod sends
  SIGTERM, then SIGKILL after the grace period; the pod stays, terminating, until the
  process exits, and is removed once the Job counted it.

Pod logs support ``limitBytes`` and ``tailLines``, as the real API does; there is no byte
offset in the real API, so there is none here. Every request is recorded in ``requests``
so tests can count list calls. Bearer-token auth: a wrong token gets 401.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.helpers import DoubleHTTPServer
from tests.kubernetes.fake_cluster import (
    UNPULLABLE_PREFIX,
    Cluster,
    container_status,
    copy,
    grace_seconds,
    signal_group,
)
from tests.kubernetes.fake_nodes import Node, Obj, node_object

__all__ = ["UNPULLABLE_PREFIX", "FakeKubernetes", "Node", "Request"]


def status_obj(code: int, reason: str, message: str, details: Obj | None = None) -> Obj:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure" if code >= 400 else "Success",
        "message": message,
        "reason": reason,
        "details": details or {},
        "code": code,
    }


def match_labels(labels: dict[str, str] | None, selector: str | None) -> bool:
    """Equality-based selectors: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, comma-joined."""
    labels = labels or {}
    for term in (selector or "").split(","):
        term = term.strip()
        if not term:
            continue
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = re.split(r"==?", term, maxsplit=1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]


DISCOVERY = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": "batch",
                "versions": [{"groupVersion": "batch/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "batch/v1", "version": "v1"},
            },
            {
                "name": "apps",
                "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
            },
        ],
    },
    "/version": {
        "major": "1",
        "minor": "31",
        "gitVersion": "v1.31.0-fake",
        "gitCommit": "0" * 40,
        "gitTreeState": "clean",
        "buildDate": "2024-08-13T00:00:00Z",
        "goVersion": "go1.22.5",
        "compiler": "gc",
        "platform": "linux/amd64",
    },
}
NODES = re.compile(r"/api/v1/nodes(?:/(?P<name>[^/]+))?")
ROUTE = re.compile(
    r"/(?P<group>api/v1|apis/batch/v1|apis/apps/v1)/namespaces/(?P<ns>[^/]+)"
    r"/(?P<kind>jobs|pods|deployments|services)"
    r"(?:/(?P<name>[^/]+))?(?:/(?P<sub>status|log))?"
)
GROUP_OF = {"jobs": "apis/batch/v1", "deployments": "apis/apps/v1", "pods": "api/v1"}
GROUP_OF["services"] = "api/v1"
# kind -> (List kind, apiVersion, resource name in messages)
LISTS = {
    "jobs": ("JobList", "batch/v1", "jobs.batch"),
    "pods": ("PodList", "v1", "pods"),
    "deployments": ("DeploymentList", "apps/v1", "deployments.apps"),
    "services": ("ServiceList", "v1", "services"),
}


class FakeKubernetes(Cluster):
    def __init__(
        self,
        token: str = "test-token",
        nodes: Iterable[Node] | None = None,
        pull_seconds: float = 0.0,
    ) -> None:
        self.token = token
        self.nodes = list(nodes) if nodes is not None else [Node()]
        self.node_uids: dict[str, str] = {}
        self.pull_seconds = pull_seconds
        self.lock = threading.Condition()
        self.resource_version = 0
        self.jobs: dict[tuple[str, str], Obj] = {}
        self.pods: dict[tuple[str, str], Obj] = {}
        self.deployments: dict[tuple[str, str], Obj] = {}
        self.services: dict[tuple[str, str], Obj] = {}
        self.logs: dict[tuple[str, str], bytearray] = {}
        self.procs: dict[tuple[str, str], subprocess.Popen[bytes]] = {}
        self.requests: list[Request] = []
        self.created: list[str] = []  # names of the Jobs created, in order
        self.closed = False
        handler = _handler(self)
        self.httpd = DoubleHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeKubernetes:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Kill every pod's process and shut the server down; safe to call twice."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            procs = list(self.procs.values())
            self.lock.notify_all()
        for proc in procs:
            if proc.poll() is None:
                signal_group(proc, signal.SIGKILL)
                proc.wait()
        self.httpd.shutdown()
        self.httpd.server_close()

    def write_kubeconfig(
        self, directory: Path, namespace: str = "default", token: str | None = None
    ) -> Path:
        path = Path(directory) / "kubeconfig"
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": token or self.token}}],
            "contexts": [
                {
                    "name": "fake",
                    "context": {"cluster": "fake", "user": "fake", "namespace": namespace},
                }
            ],
        }
        path.write_text(json.dumps(doc))  # JSON is YAML
        return path

    def count(self, method: str, kind: str, collection: bool = True) -> int:
        """Requests of ``method`` on ``jobs`` or ``pods`` (collections, or single objects)."""
        found = 0
        for r in self.requests:
            m = ROUTE.fullmatch(r.path)
            if m and r.method == method and m["kind"] == kind and (m["name"] is None) == collection:
                found += 1
        return found

    # -- HTTP --------------------------------------------------------------------------

    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        if self.closed:  # a stopped server drops kept-alive connections too
            h.close_connection = True
            h.connection.close()
            return
        parts = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = parts.path.rstrip("/") or "/"
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length) or b"null") if length else None
        self.requests.append(Request(method, path, query))
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return _send(h, 401, status_obj(401, "Unauthorized", "Unauthorized"))
        if path in DISCOVERY and method == "GET":
            return _send(h, 200, DISCOVERY[path])
        nodes = NODES.fullmatch(path)
        if nodes and method == "GET":
            return _send(h, *self._nodes(nodes["name"], query.get("labelSelector")))
        route = ROUTE.fullmatch(path)
        if route is None or GROUP_OF[route["kind"]] != route["group"]:
            message = f"the server could not find the requested resource ({path})"
            return _send(h, 404, status_obj(404, "NotFound", message))
        code, answer = self._route(method, route, query, body if isinstance(body, dict) else {})
        if isinstance(answer, bytes):
            return _send(h, code, answer, "text/plain")
        return _send(h, code, answer)

    def _route(
        self, method: str, route: re.Match[str], q: dict[str, str], body: Obj
    ) -> tuple[int, Obj | bytes]:
        ns, kind, name, sub = route["ns"], route["kind"], route["name"], route["sub"]
        if name is None:
            if method == "GET":
                return 200, self._list(ns, kind, q.get("labelSelector"))
            if method == "POST" and kind == "jobs":
                return self._create_job(ns, body)
            if method == "POST" and kind in ("deployments", "services"):
                return self._create_object(ns, kind, body)
            if method == "DELETE" and kind == "pods":
                return self._delete_pods(ns, q, body)
        else:
            with self.lock:
                store = self._store(kind)
                obj = store.get((ns, name))
                if obj is None:
                    resource = LISTS[kind][2]
                    return 404, status_obj(
                        404,
                        "NotFound",
                        f'{resource} "{name}" not found',
                        {"name": name, "kind": kind},
                    )
                if method == "GET" and sub == "log" and kind == "pods":
                    return self._log(ns, obj, q)
                if method == "GET":
                    return 200, copy(obj)
                if method == "DELETE" and kind == "jobs":
                    return self._delete_job(ns, name, q, body)
                if method == "DELETE" and kind == "deployments":
                    return self._delete_deployment(ns, name, q, body)
                if method == "DELETE" and kind == "services":
                    gone = store.pop((ns, name))
                    self._bump(gone)
                    return 200, copy(gone)
                if method == "DELETE":
                    self._delete_pod(ns, name, grace_seconds(q, body, obj))
                    return 200, copy(obj)
        return 405, status_obj(405, "MethodNotAllowed", f"{method} is not supported by the fake")

    def _store(self, kind: str) -> dict[tuple[str, str], Obj]:
        return {
            "jobs": self.jobs,
            "pods": self.pods,
            "deployments": self.deployments,
            "services": self.services,
        }[kind]

    def _list(self, ns: str, kind: str, selector: str | None) -> Obj:
        with self.lock:
            store = self._store(kind)
            items = [
                copy(o)
                for (n, _), o in sorted(store.items())
                if n == ns and match_labels(o["metadata"].get("labels"), selector)
            ]
            version = str(self.resource_version)
        api_kind, api_version, _ = LISTS[kind]
        return {
            "kind": api_kind,
            "apiVersion": api_version,
            "metadata": {"resourceVersion": version},
            "items": items,
        }

    def _nodes(self, name: str | None, selector: str | None) -> tuple[int, Obj]:
        with self.lock:
            version = str(self.resource_version)
            items = [
                node_object(node, self.node_uids.setdefault(node.name, str(uuid.uuid4())), version)
                for node in self.nodes
            ]
        if name is not None:
            found = next((n for n in items if n["metadata"]["name"] == name), None)
            if found is None:
                message = f'nodes "{name}" not found'
                return 404, status_obj(404, "NotFound", message, {"name": name, "kind": "nodes"})
            return 200, found
        listed = [n for n in items if match_labels(n["metadata"]["labels"], selector)]
        return 200, {
            "kind": "NodeList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": version},
            "items": listed,
        }

    def _create_job(self, ns: str, body: Obj) -> tuple[int, Obj]:
        name = (body.get("metadata") or {}).get("name", "")
        with self.lock:
            if (ns, name) in self.jobs:
                message = f'jobs.batch "{name}" already exists'
                details = {"name": name, "group": "batch", "kind": "jobs"}
                return 409, status_obj(409, "AlreadyExists", message, details)
            job = copy(body)
            metadata = self._new_metadata(job.setdefault("metadata", {}), ns)
            spec = job.setdefault("spec", {})
            spec.setdefault("completions", 1)
            spec.setdefault("parallelism", 1)
            spec.setdefault("backoffLimit", 6)
            template_labels = spec["template"].setdefault("metadata", {}).setdefault("labels", {})
            template_labels.update(
                {
                    "job-name": name,
                    "batch.kubernetes.io/job-name": name,
                    "controller-uid": metadata["uid"],
                }
            )
            job["status"] = {}
            self.jobs[(ns, name)] = job
            self.created.append(name)
            self._bump(job)
            answer = copy(job)
        threading.Thread(target=self._job_controller, args=(ns, name), daemon=True).start()
        return 201, answer

    def _create_object(self, ns: str, kind: str, body: Obj) -> tuple[int, Obj]:
        """A Deployment (its controller keeps one pod of the template running) or a
        Service (given a cluster IP: this cluster's network is the loopback of the test
        machine, so a Service's port is reached where its pod listens, port = targetPort)."""
        name = (body.get("metadata") or {}).get("name", "")
        store = self._store(kind)
        with self.lock:
            if (ns, name) in store:
                message = f'{LISTS[kind][2]} "{name}" already exists'
                return 409, status_obj(409, "AlreadyExists", message, {"name": name, "kind": kind})
            obj = copy(body)
            self._new_metadata(obj.setdefault("metadata", {}), ns)
            if kind == "services":
                obj["spec"]["clusterIP"] = "127.0.0.1"
                obj["spec"]["clusterIPs"] = ["127.0.0.1"]
                obj["status"] = {"loadBalancer": {}}
            else:
                obj["status"] = {"replicas": 0, "readyReplicas": 0, "availableReplicas": 0}
            store[(ns, name)] = obj
            self._bump(obj)
            answer = copy(obj)
        if kind == "deployments":
            threading.Thread(
                target=self._deployment_controller, args=(ns, name), daemon=True
            ).start()
        return 201, answer

    def _delete_deployment(
        self, ns: str, name: str, q: dict[str, str], body: Obj
    ) -> tuple[int, Obj]:
        """Its pods go too (Background propagation), each with its grace period."""
        deployment = self.deployments.pop((ns, name))
        self._bump(deployment)
        grace = body.get("gracePeriodSeconds", q.get("gracePeriodSeconds"))
        for (pns, pname), pod in list(self.pods.items()):
            if pns == ns and self._owned_by(pod, deployment):
                wait = int(grace) if grace is not None else grace_seconds({}, {}, pod)
                self._delete_pod(ns, pname, wait)
        details = {"name": name, "group": "apps", "kind": "deployments"}
        return 200, status_obj(200, "", "", details)

    def _delete_job(self, ns: str, name: str, q: dict[str, str], body: Obj) -> tuple[int, Obj]:
        """Background and Foreground propagation delete the pods (with their grace period)."""
        job = self.jobs.pop((ns, name))
        self._bump(job)
        policy = body.get("propagationPolicy") or q.get("propagationPolicy") or "Background"
        if policy != "Orphan":
            for (pns, pname), pod in list(self.pods.items()):
                if pns == ns and pod["metadata"]["labels"].get("job-name") == name:
                    self._delete_pod(ns, pname, grace_seconds({}, {}, pod))
        details = {"name": name, "group": "batch", "kind": "jobs", "uid": job["metadata"]["uid"]}
        return 200, status_obj(200, "", "", details)

    def _delete_pods(self, ns: str, q: dict[str, str], body: Obj) -> tuple[int, Obj]:
        with self.lock:
            chosen = [
                (key, pod)
                for key, pod in self.pods.items()
                if key[0] == ns and match_labels(pod["metadata"]["labels"], q.get("labelSelector"))
            ]
            for (_, pname), pod in chosen:
                self._delete_pod(ns, pname, grace_seconds(q, body, pod))
            items = [copy(pod) for _, pod in chosen]
        return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}

    def _log(self, ns: str, pod: Obj, q: dict[str, str]) -> tuple[int, Obj | bytes]:
        pname = pod["metadata"]["name"]
        state = container_status(pod).get("state") or {}
        if "running" not in state and "terminated" not in state:
            waiting = state.get("waiting") or {}
            reason = waiting.get("reason", "ContainerCreating")
            message = f'container "main" in pod "{pname}" is waiting to start: {reason}'
            return 400, status_obj(400, "BadRequest", message)
        data = bytes(self.logs.get((ns, pname), b""))
        if "tailLines" in q:
            lines = data.splitlines(keepends=True)
            data = (
                b"".join(lines[len(lines) - int(q["tailLines"]) :]) if int(q["tailLines"]) else b""
            )
        if "limitBytes" in q:
            data = data[: int(q["limitBytes"])]
        return 200, data


def _send(
    h: BaseHTTPRequestHandler, code: int, body: Obj | bytes, ctype: str = "application/json"
) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def _handler(fake: FakeKubernetes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            fake.handle(self, "GET")

        def do_POST(self) -> None:
            fake.handle(self, "POST")

        def do_DELETE(self) -> None:
            fake.handle(self, "DELETE")

    return Handler


if __name__ == "__main__":
    server = FakeKubernetes().start()
    print("fake API server at", server.url, "kubeconfig:", server.write_kubeconfig(Path.cwd()))
    signal.sigwait({signal.SIGINT, signal.SIGTERM})
    server.stop()
