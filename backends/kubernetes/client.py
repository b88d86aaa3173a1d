"""The only module that talks to the API server: building the official client from
in-cluster config or a kubeconfig, the handful of calls the backend makes, and the
translation of client errors into the backends' error tree.

Lists and logs are read with ``_preload_content=False``: the backend parses the API's
JSON as plain dicts (what the golden tests pin), and 100 Jobs are not validated into
pydantic models on every tick.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from jobyard.backends.errors import BackendError, BackendUnavailable, SubmitRejected

logger = logging.getLogger(__name__)

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def api_error(e: ApiException, what: str) -> BackendError:
    """A client error as a backend error: bad credentials and refused objects are
    permanent (``SubmitRejected``), anything else is worth retrying."""
    status = e.status or 0
    message = _message(e)
    if status == 401:
        return SubmitRejected(
            f"{what}: the Kubernetes API server rejected jobyard's credentials (401 "
            "Unauthorized): check the token in JOBYARD_KUBERNETES_KUBECONFIG or the "
            "service account"
        )
    if status == 403:
        return SubmitRejected(
            f"{what}: forbidden (403): the service account lacks RBAC rights ({message})"
        )
    if status in (400, 404, 409, 422):
        return SubmitRejected(f"{what}: Kubernetes refused it ({status}): {message}")
    return BackendUnavailable(f"{what}: Kubernetes API error {status}: {message}")


def _message(e: ApiException) -> str:
    try:
        return str(json.loads(e.body or "")["message"])
    except (ValueError, KeyError, TypeError):
        return str(e.reason or e.body or "")


@contextmanager
def wrapped(what: str) -> Iterator[None]:
    """Run API calls, re-raising their errors as backend errors."""
    try:
        yield
    except ApiException as e:
        raise api_error(e, what) from e
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise BackendUnavailable(f"{what}: cannot reach the Kubernetes API server: {e}") from e


def connect(
    kubeconfig: Path | None, context: str | None, namespace: str | None
) -> tuple[k8s.ApiClient, str]:
    """A client and the namespace to use: the setting, else the kubeconfig context's or
    the service account's namespace, else ``default``."""
    configuration = k8s.Configuration()
    try:
        if kubeconfig is not None:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig), context=context, client_configuration=configuration
            )
            found = namespace or _context_namespace(kubeconfig, context)
        else:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
            found = namespace or _service_account_namespace()
    except (ConfigException, OSError, ValueError) as e:
        where = f"kubeconfig {kubeconfig}" if kubeconfig else "in-cluster service account"
        raise SubmitRejected(f"cannot configure the Kubernetes client from {where}: {e}") from e
    # One quick failure beats urllib3's default retries against a server that is down.
    configuration.retries = 1
    return k8s.ApiClient(configuration), found or "default"


def _context_namespace(kubeconfig: Path, context: str | None) -> str | None:
    contexts, active = k8s_config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig)
    )
    chosen = next((c for c in contexts if c["name"] == context), active) if context else active
    return ((chosen or {}).get("context") or {}).get("namespace")


def _service_account_namespace() -> str | None:
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


class Api:
    """The calls the backend makes, each one HTTP request, each with a timeout."""

    def __init__(self, api_client: k8s.ApiClient, namespace: str, timeout: float) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.timeout = timeout
        self.batch = k8s.BatchV1Api(api_client)
        self.core = k8s.CoreV1Api(api_client)
        self.apps = k8s.AppsV1Api(api_client)

    def create_job(self, manifest: dict[str, Any]) -> dict[str, Any]:
        job = k8s.V1Job.from_dict(manifest)
        if job is None:
            raise SubmitRejected("empty Job manifest")
        raw = self.batch.create_namespaced_job(
            self.namespace,
            job,
            _preload_content=False,
            _request_timeout=self.timeout,
        )
        return _json(raw)

    def read_job(self, name: str) -> dict[str, Any]:
        raw = self.batch.read_namespaced_job(
            name, self.namespace, _preload_content=False, _request_timeout=self.timeout
        )
        return _json(raw)

    def list_jobs(self, selector: str) -> list[dict[str, Any]]:
        raw = self.batch.list_namespaced_job(
            self.namespace,
            label_selector=selector,
            _preload_content=False,
            _request_timeout=self.timeout,
        )
        return list(_json(raw).get("items") or [])

    def list_pods(self, selector: str) -> list[dict[str, Any]]:
        raw = self.core.list_namespaced_pod(
            self.namespace,
            label_selector=selector,
            _preload_content=False,
            _request_timeout=self.timeout,
        )
        return list(_json(raw).get("items") or [])

    def list_nodes(self, selector: str) -> list[dict[str, Any]]:
        """Nodes are cluster-wide: this needs ``list`` on ``nodes`` (a ClusterRole)."""
        raw = self.core.list_node(
            label_selector=selector or None,
            _preload_content=False,
            _request_timeout=self.timeout,
        )
        return list(_json(raw).get("items") or [])

    def pod_log(self, pod: str, limit_bytes: int) -> bytes:
        """The first ``limit_bytes`` of the pod's log: the API has no byte offset, but
        ``limitBytes`` counts from the start, so the caller cuts at its own offset."""
        raw = self.core.read_namespaced_pod_log(
            pod,
            self.namespace,
            container="main",
            limit_bytes=limit_bytes,
            _preload_content=False,
            _request_timeout=self.timeout,
        )
        return bytes(raw.data)  # type: ignore[attr-defined]  # a raw response

    def delete_pods(self, selector: str, grace_seconds: int) -> None:
        self.core.delete_collection_namespaced_pod(
            self.namespace,
            label_selector=selector,
            grace_period_seconds=grace_seconds,
            _preload_content=False,
            _request_timeout=self.timeout,
        )

    def delete_job(self, name: str) -> None:
        self.batch.delete_namespaced_job(
            name,
            self.namespace,
            propagation_policy="Background",
            _preload_content=False,
            _request_timeout=self.timeout,
        )

    # -- model servers: a Deployment and a Service each ----------------------------------

    def create_deployment(self, manifest: dict[str, Any]) -> dict[str, Any]:
        deployment = k8s.V1Deployment.from_dict(manifest)
        if deployment is None:
            raise SubmitRejected("empty Deployment manifest")
        raw = self.apps.create_namespaced_deployment(
            self.namespace, deployment, _preload_content=False, _request_timeout=self.timeout
        )
        return _json(raw)

    def read_deployment(self, name: str) -> dict[str, Any]:
        raw = self.apps.read_namespaced_deployment(
            name, self.namespace, _preload_content=False, _request_timeout=self.timeout
        )
        return _json(raw)

    def list_deployments(self, selector: str) -> list[dict[str, Any]]:
        raw = self.apps.list_namespaced_deployment(
            self.namespace,
            label_selector=selector,
            _preload_content=False,
            _request_timeout=self.timeout,
        )
        return list(_json(raw).get("items") or [])

    def delete_deployment(self, name: str, grace_seconds: int | None = None) -> None:
        self.apps.delete_namespaced_deployment(
            name,
            self.namespace,
            propagation_policy="Background",
            grace_period_seconds=grace_seconds,
            _preload_content=False,
            _request_timeout=self.timeout,
        )

    def create_service(self, manifest: dict[str, Any]) -> dict[str, Any]:
        service = k8s.V1Service.from_dict(manifest)
        if service is None:
            raise SubmitRejected("empty Service manifest")
        raw = self.core.create_namespaced_service(
            self.namespace, service, _preload_content=False, _request_timeout=self.timeout
        )
        return _json(raw)

    def read_service(self, name: str) -> dict[str, Any]:
        raw = self.core.read_namespaced_service(
            name, self.namespace, _preload_content=False, _request_timeout=self.timeout
        )
        return _json(raw)

    def delete_service(self, name: str) -> None:
        self.core.delete_namespaced_service(
            name, self.namespace, _preload_content=False, _request_timeout=self.timeout
        )

    def close(self) -> None:
        self.api_client.close()  # type: ignore[no-untyped-call]


def _json(raw: Any) -> dict[str, Any]:
    doc = json.loads(raw.data)
    if not isinstance(doc, dict):
        raise BackendUnavailable(
            "the Kubernetes API server answered with something else than an object"
        )
    return doc
