"""The cluster behind the API server double: job controller, scheduler and kubelet.

They act on the double's objects under its lock, as the real ones act on the API
server's: see ``fake_k8s`` for what each does and why.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from tests.kubernetes.fake_nodes import Node, Obj, now

UNPULLABLE_PREFIX = "registry.invalid/"
TICK = 0.05
RESTART_BACKOFF = 0.2  # the kubelet's CrashLoopBackOff starts at 10 s; short here


def copy(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


class Cluster:
    """State and controllers; ``FakeKubernetes`` adds the HTTP surface."""

    nodes: list[Node]
    pull_seconds: float
    lock: threading.Condition
    resource_version: int
    jobs: dict[tuple[str, str], Obj]
    pods: dict[tuple[str, str], Obj]
    deployments: dict[tuple[str, str], Obj]
    logs: dict[tuple[str, str], bytearray]
    procs: dict[tuple[str, str], subprocess.Popen[bytes]]
    closed: bool

    # -- objects (lock held) -----------------------------------------------------------

    def _bump(self, obj: Obj) -> None:
        self.resource_version += 1
        obj["metadata"]["resourceVersion"] = str(self.resource_version)
        self.lock.notify_all()

    def _new_metadata(self, metadata: Obj, ns: str) -> Obj:
        metadata.update(namespace=ns, uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
        metadata.setdefault("labels", {})
        return metadata

    def _delete_pod(self, ns: str, pname: str, grace: int) -> None:
        """Mark the pod terminating and signal its process; it goes once that has exited."""
        pod = self.pods[(ns, pname)]
        if pod["status"].get("phase") in ("Succeeded", "Failed"):
            del self.pods[(ns, pname)]  # nothing runs: it goes at once
            self._bump(pod)
            return
        if pod["metadata"].get("deletionTimestamp"):
            if grace == 0:
                self._kill_later(ns, pname, 0)  # a second, harder delete shortens the wait
            return
        pod["metadata"]["deletionTimestamp"] = now()
        pod["metadata"]["deletionGracePeriodSeconds"] = grace
        self._bump(pod)
        proc = self.procs.get((ns, pname))
        if proc is None:
            return  # not running: the pod thread notices the deletion and ends the pod
        if grace == 0:
            signal_group(proc, signal.SIGKILL)
        else:
            signal_group(proc, signal.SIGTERM)
            self._kill_later(ns, pname, grace)

    def _kill_later(self, ns: str, pname: str, grace: int) -> None:
        def kill() -> None:
            proc = self.procs.get((ns, pname))
            if proc is not None and proc.poll() is None:
                signal_group(proc, signal.SIGKILL)

        timer = threading.Timer(grace, kill)
        timer.daemon = True
        timer.start()

    # -- job controller ----------------------------------------------------------------

    def _job_controller(self, ns: str, name: str) -> None:
        started = time.monotonic()
        with self.lock:
            job = self.jobs.get((ns, name))
            if job is None:
                return
            job["status"] = {
                "startTime": now(),
                "active": 0,
                "ready": 0,
                "succeeded": 0,
                "failed": 0,
                "terminating": 0,
            }
            self._bump(job)
            deadline = job["spec"].get("activeDeadlineSeconds")
            while not self.closed and self.jobs.get((ns, name)) is job:
                status = job["status"]
                if status.get("conditions"):
                    return
                if deadline is not None and time.monotonic() - started > deadline:
                    self._deadline_exceeded(ns, job)
                    return
                if not self._pods_of(ns, name):
                    pod = self._make_pod(job)
                    threading.Thread(
                        target=self._run_pod, args=(ns, pod["metadata"]["name"]), daemon=True
                    ).start()
                self.lock.wait(TICK)

    def _pods_of(self, ns: str, job_name: str) -> list[Obj]:
        return [
            p
            for (n, _), p in self.pods.items()
            if n == ns
            and p["metadata"]["labels"].get("job-name") == job_name
            and p["status"].get("phase") in ("Pending", "Running")
        ]

    def _deadline_exceeded(self, ns: str, job: Obj) -> None:
        name = job["metadata"]["name"]
        for pod in self._pods_of(ns, name):
            self._delete_pod(ns, pod["metadata"]["name"], grace_seconds({}, {}, pod))
        self._fail_job(job, "DeadlineExceeded", "Job was active longer than specified deadline")

    def _fail_job(self, job: Obj, reason: str, message: str) -> None:
        status = job["status"]
        status["active"] = 0
        status["conditions"] = [
            {
                "type": kind,
                "status": "True",
                "reason": reason,
                "message": message,
                "lastProbeTime": now(),
                "lastTransitionTime": now(),
            }
            for kind in ("FailureTarget", "Failed")
        ]
        self._bump(job)

    def _count_pod(self, ns: str, pod: Obj, exit_code: int | None) -> None:
        """What the job controller does when one of its pods ended."""
        job = self.jobs.get((ns, pod["metadata"]["labels"].get("job-name", "")))
        if job is None or not job.get("status") or job["status"].get("conditions"):
            return
        status = job["status"]
        status["active"] = 0
        if exit_code == 0:
            status["succeeded"] += 1
            status["completionTime"] = now()
            status["conditions"] = [
                {
                    "type": kind,
                    "status": "True",
                    "lastProbeTime": now(),
                    "lastTransitionTime": now(),
                }
                for kind in ("SuccessCriteriaMet", "Complete")
            ]
            self._bump(job)
            return
        action, index = policy_action(job, exit_code)
        if action == "Ignore":
            self._bump(job)
            return
        status["failed"] += 1
        if action == "FailJob":
            message = (
                f"Container main for pod {ns}/{pod['metadata']['name']} failed with exit "
                f"code {exit_code} matching FailJob rule at index {index}"
            )
            self._fail_job(job, "PodFailurePolicy", message)
        elif status["failed"] > job["spec"].get("backoffLimit", 6):
            self._fail_job(
                job, "BackoffLimitExceeded", "Job has reached the specified backoff limit"
            )
        else:
            self._bump(job)

    # -- deployment controller (with its ReplicaSet's part) ------------------------------

    def _deployment_controller(self, ns: str, name: str) -> None:
        """Keep ``replicas`` (one) pods of the template: a pod that ends, or is deleted, is
        replaced while the Deployment exists. Containers that exit are the kubelet's to
        restart (``restartPolicy: Always``), in the same pod."""
        with self.lock:
            deployment = self.deployments.get((ns, name))
            if deployment is None:
                return
            deployment["metadata"]["hash"] = uuid.uuid4().hex[:10]  # the ReplicaSet's
            while not self.closed and self.deployments.get((ns, name)) is deployment:
                live = [
                    p
                    for (n, _), p in self.pods.items()
                    if n == ns
                    and self._owned_by(p, deployment)
                    and not p["metadata"].get("deletionTimestamp")
                    and p["status"].get("phase") in ("Pending", "Running")
                ]
                ready = sum(1 for p in live if container_status(p).get("ready"))
                status = {"replicas": len(live), "readyReplicas": ready, "availableReplicas": ready}
                if deployment["status"] != status:
                    deployment["status"] = status
                    self._bump(deployment)
                if len(live) < int(deployment["spec"].get("replicas", 1)):
                    pod = self._make_pod(deployment)
                    threading.Thread(
                        target=self._run_pod, args=(ns, pod["metadata"]["name"]), daemon=True
                    ).start()
                self.lock.wait(TICK)

    def _owned_by(self, pod: Obj, deployment: Obj) -> bool:
        owners = pod["metadata"].get("ownerReferences") or [{}]
        replica_set = f"{deployment['metadata']['name']}-{deployment['metadata'].get('hash')}"
        return bool(owners[0].get("kind") == "ReplicaSet" and owners[0].get("name") == replica_set)

    # -- scheduler and kubelet ---------------------------------------------------------

    def _make_pod(self, job: Obj) -> Obj:
        """A pod of a Job's or a Deployment's template (owned by its ReplicaSet)."""
        ns, job_name = job["metadata"]["namespace"], job["metadata"]["name"]
        template = copy(job["spec"]["template"])
        metadata = template.get("metadata") or {}
        owner = {"apiVersion": "batch/v1", "kind": "Job", "name": job_name}
        if job.get("kind") == "Deployment":
            replica_set = f"{job_name}-{job['metadata']['hash']}"
            owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": replica_set}
            metadata.setdefault("labels", {})["pod-template-hash"] = job["metadata"]["hash"]
            job_name = replica_set
        metadata["name"] = f"{job_name}-{uuid.uuid4().hex[:5]}"
        metadata["generateName"] = f"{job_name}-"
        self._new_metadata(metadata, ns)
        metadata["ownerReferences"] = [
            {
                **owner,
                "uid": job["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": template["spec"],
            "status": {"phase": "Pending", "qosClass": "BestEffort"},
        }
        self.pods[(ns, metadata["name"])] = pod
        self.logs[(ns, metadata["name"])] = bytearray()
        if job.get("kind") != "Deployment":
            job["status"]["active"] = 1
            self._bump(job)
        self._bump(pod)
        return pod

    def _fitting_node(self, pod: Obj) -> tuple[Node | None, str]:
        """The first node the pod fits, or None and the scheduler's message why not."""
        selector = pod["spec"].get("nodeSelector") or {}
        limits = (pod["spec"]["containers"][0].get("resources") or {}).get("limits") or {}
        why = []
        for node in self.nodes:
            allocatable = node.allocatable()
            extended = [r for r in limits if "/" in r]  # device counts: whole numbers
            short = [r for r in extended if int(limits[r]) > int(allocatable.get(r, 0))]
            if node.unschedulable:
                why.append("node(s) were unschedulable")
            elif any(node.all_labels.get(k) != v for k, v in selector.items()):
                why.append("node(s) didn't match Pod's node affinity/selector")
            elif short:
                why.append(f"Insufficient {short[0]}")
            else:
                return node, ""
        counts = {reason: why.count(reason) for reason in why}
        detail = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))
        total = len(self.nodes)
        return None, (
            f"0/{total} nodes are available: {detail}. preemption: 0/{total} nodes are available."
        )

    def _wait_or_deleted(self, ns: str, pname: str, seconds: float) -> bool:
        """Sleep (lock held, released while waiting); True once the pod is being deleted."""
        end = time.monotonic() + seconds
        while True:
            pod = self.pods.get((ns, pname))
            if pod is None or pod["metadata"].get("deletionTimestamp") or self.closed:
                return True
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.lock.wait(min(left, TICK))

    def _run_pod(self, ns: str, pname: str) -> None:
        with self.lock:
            pod = self.pods[(ns, pname)]
            if self._schedule(ns, pod) or self._pull(ns, pod):
                self._finish_pod(ns, pname, None)
                return
            proc = self._start_container(ns, pod)
            if proc is None:
                self._finish_pod(ns, pname, 128)
                return
        while True:
            code = self._drain(ns, pname, proc)
            with self.lock:
                pod = self.pods.get((ns, pname))
                if (
                    pod is None
                    or pod["spec"].get("restartPolicy") != "Always"
                    or pod["metadata"].get("deletionTimestamp")
                    or self.closed
                ):
                    self._finish_pod(ns, pname, code)
                    return
                # restartPolicy Always: the kubelet starts the container again in the pod
                last = _terminated(pod, code)
                restarts = int(container_status(pod).get("restartCount") or 0) + 1
                self._set_waiting(pod, "CrashLoopBackOff", "back-off restarting failed container")
                if self._wait_or_deleted(ns, pname, RESTART_BACKOFF):
                    self._finish_pod(ns, pname, code)
                    return
                proc = self._start_container(ns, pod, restarts, last)
                if proc is None:
                    self._finish_pod(ns, pname, 128)
                    return

    def _drain(self, ns: str, pname: str, proc: subprocess.Popen[bytes]) -> int:
        """The container's output into its log until it exits; its exit code."""
        assert proc.stdout is not None
        for chunk in iter(lambda: proc.stdout.read1(65536), b""):  # type: ignore[union-attr]
            with self.lock:
                self.logs[(ns, pname)] += chunk
        proc.stdout.close()
        code = proc.wait()
        return code if code >= 0 else 128 - code

    def _schedule(self, ns: str, pod: Obj) -> bool:
        """Wait for a node that fits; True if the pod was deleted first."""
        pname = pod["metadata"]["name"]
        while (fit := self._fitting_node(pod))[0] is None:
            why = fit[1]
            pod["status"]["conditions"] = [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": why,
                    "lastProbeTime": None,
                    "lastTransitionTime": now(),
                }
            ]
            self._bump(pod)
            if self._wait_or_deleted(ns, pname, 0.5):
                return True
        pod["spec"]["nodeName"] = fit[0].name
        pod["status"]["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": now(),
            }
        ]
        return False

    def _pull(self, ns: str, pod: Obj) -> bool:
        """Pull the image (or fail to, for ever); True if the pod was deleted first."""
        pname = pod["metadata"]["name"]
        container = pod["spec"]["containers"][0]
        image = container.get("image", "")
        self._set_waiting(pod, "ContainerCreating", "")
        if self._wait_or_deleted(ns, pname, self.pull_seconds):
            return True
        if not image.startswith(UNPULLABLE_PREFIX):
            return False
        message = (
            f'failed to pull and unpack image "{image}": failed to resolve reference '
            f'"{image}": dial tcp: lookup registry.invalid: no such host'
        )
        self._set_waiting(pod, "ErrImagePull", message)
        while not self._wait_or_deleted(ns, pname, 0.5):
            self._set_waiting(pod, "ImagePullBackOff", f'Back-off pulling image "{image}"')
        return True

    def _set_waiting(self, pod: Obj, reason: str, message: str) -> None:
        container = pod["spec"]["containers"][0]
        waiting = {"reason": reason, **({"message": message} if message else {})}
        pod["status"]["containerStatuses"] = [
            {
                "name": container["name"],
                "image": container.get("image", ""),
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "started": False,
                "state": {"waiting": waiting},
            }
        ]
        self._bump(pod)

    def _start_container(
        self, ns: str, pod: Obj, restarts: int = 0, last: Obj | None = None
    ) -> subprocess.Popen[bytes] | None:
        pname = pod["metadata"]["name"]
        container = pod["spec"]["containers"][0]
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        if argv and argv[0] == "python":
            argv[0] = sys.executable
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOSTNAME": pname}
        env.update({e["name"]: str(e.get("value", "")) for e in container.get("env") or []})
        workdir = container.get("workingDir") or None
        try:
            if workdir:
                Path(workdir).mkdir(parents=True, exist_ok=True)  # as container runtimes do
            proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=workdir,
                start_new_session=True,
            )
        except OSError as e:
            self.logs[(ns, pname)] += f"fake kubelet: cannot start {argv!r}: {e}\n".encode()
            return None
        self.procs[(ns, pname)] = proc
        started = now()
        pod["status"].update(
            phase="Running", startTime=started, podIP="10.0.0.2", hostIP="10.0.0.1"
        )
        pod["status"]["containerStatuses"] = [
            {
                "name": container["name"],
                "image": container.get("image", ""),
                "imageID": "fake://" + container.get("image", ""),
                "containerID": "fake://" + pname,
                "ready": True,
                "restartCount": restarts,
                "started": True,
                "state": {"running": {"startedAt": started}},
                **({"lastState": {"terminated": last}} if last else {}),
            }
        ]
        self._bump(pod)
        return proc

    def _finish_pod(self, ns: str, pname: str, exit_code: int | None) -> None:
        """Record how the pod ended, let the Job count it, and drop it if it was deleted."""
        pod = self.pods.get((ns, pname))
        if pod is None:
            return
        status = pod["status"]
        status["phase"] = "Succeeded" if exit_code == 0 else "Failed"
        if exit_code is not None:
            state = container_status(pod).get("state") or {}
            running = state.get("running") or {}
            terminated = {
                "exitCode": exit_code,
                "reason": "Completed" if exit_code == 0 else "Error",
                "startedAt": running.get("startedAt", now()),
                "finishedAt": now(),
            }
            statuses = status.get("containerStatuses") or [{}]
            statuses[0].update(ready=False, started=False, state={"terminated": terminated})
            status["containerStatuses"] = statuses
        self.procs.pop((ns, pname), None)
        self._bump(pod)
        self._count_pod(ns, pod, exit_code)
        if pod["metadata"].get("deletionTimestamp"):
            del self.pods[(ns, pname)]
            self._bump(pod)


def _terminated(pod: Obj, exit_code: int) -> Obj:
    running = (container_status(pod).get("state") or {}).get("running") or {}
    return {
        "exitCode": exit_code,
        "reason": "Completed" if exit_code == 0 else "Error",
        "startedAt": running.get("startedAt", now()),
        "finishedAt": now(),
    }


def policy_action(job: Obj, exit_code: int | None) -> tuple[str, int]:
    """The first podFailurePolicy rule matching the exit code: (action, index), or Count."""
    rules = ((job["spec"].get("podFailurePolicy") or {}).get("rules")) or []
    for index, rule in enumerate(rules):
        on = rule.get("onExitCodes")
        if not on or exit_code is None:
            continue
        inside = exit_code in on.get("values", [])
        if inside == (on.get("operator") == "In"):
            return str(rule["action"]), index
    return "Count", -1


def grace_seconds(q: dict[str, str], body: Obj, pod: Obj) -> int:
    raw = body.get("gracePeriodSeconds", q.get("gracePeriodSeconds"))
    if raw is None:
        raw = pod["spec"].get("terminationGracePeriodSeconds", 30)
    return int(raw)


def container_status(pod: Obj) -> Obj:
    statuses = pod["status"].get("containerStatuses") or [{}]
    return statuses[0]


def signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:
        pass
