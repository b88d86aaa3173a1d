"""Typed, frozen settings read once from ``JOBYARD_*`` environment variables.

This is the only module that reads ``os.environ``; everything else receives a
``Settings`` instance. A bad value raises ``SettingsError`` naming the variable,
so a misconfigured deployment stops at start-up instead of failing later.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PREFIX = "JOBYARD_"


class SettingsError(ValueError):
    """A ``JOBYARD_*`` variable is missing or malformed."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


def _parse_int(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise ValueError(f"must be at least {minimum}{upper}, got {value}")
        return value

    return parse


def _parse_float(minimum: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw)
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"must be true or false, got {raw!r}")


def _parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {raw!r}")
        return raw

    return parse


def _parse_uri(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if not any(raw.startswith(f"{scheme}://") for scheme in schemes):
            raise ValueError(f"must start with {' or '.join(s + '://' for s in schemes)}")
        return raw

    return parse


def _parse_names(raw: str) -> tuple[str, ...]:
    return tuple(sorted({part.strip().lower() for part in raw.split(",") if part.strip()}))


def _setting(default: Any, parse: Callable[[str], Any] = str, doc: str = "") -> Any:
    return field(default=default, metadata={"parse": parse, "doc": doc})


@dataclass(frozen=True)
class Settings:
    """Every knob jobyard has. Field ``foo_bar`` is read from ``JOBYARD_FOO_BAR``."""

    data_dir: Path = _setting(
        Path(".jobyard"), Path, "Embedded data (MongoDB-wire files, Redis, results, secrets)."
    )
    mongo_uri: str | None = _setting(
        None, _parse_uri("mongodb", "mongodb+srv"), "MongoDB URI; unset = embedded server."
    )
    mongo_db: str = _setting("jobyard", str, "MongoDB database name.")
    redis_url: str | None = _setting(
        None, _parse_uri("redis", "rediss"), "Redis broker URL; unset = embedded server."
    )
    jwt_secret: str | None = _setting(
        None, str, "HMAC key signing login tokens; unset = generated into the data dir."
    )
    encryption_key: str | None = _setting(
        None, str, "Fernet key encrypting credentials at rest; unset = generated."
    )
    token_ttl_seconds: int = _setting(3600, _parse_int(60), "Lifetime of a login token.")
    login_failures_per_key: int = _setting(
        5, _parse_int(1), "Failed logins for one key id before it is held back (429)."
    )
    login_failures_per_client: int = _setting(
        20, _parse_int(1), "Failed logins from one client address before it is held back."
    )
    login_failure_window_seconds: int = _setting(
        300, _parse_int(1), "How long failed logins count, and how long a holdback lasts."
    )
    max_body_bytes: int = _setting(
        1_048_576, _parse_int(1024), "Largest accepted request body; larger gets 413."
    )
    host: str = _setting("127.0.0.1", str, "Address the API listens on.")
    port: int = _setting(8000, _parse_int(0, 65535), "Port the API listens on.")
    api_workers: int = _setting(2, _parse_int(1), "gunicorn worker processes.")
    api_threads: int = _setting(8, _parse_int(1), "Threads per gunicorn worker.")
    log_level: str = _setting(
        "INFO", _parse_choice("DEBUG", "INFO", "WARNING", "ERROR"), "Log level."
    )
    log_format: str = _setting(
        "text",
        _parse_choice("text", "json"),
        "json: one object per line with time, level, logger, message, request_id, job_id ...",
    )
    metrics_port: int = _setting(
        0, _parse_int(0, 65535), "Prometheus /metrics of the API on this port; 0 = off."
    )
    worker_heartbeat_seconds: float = _setting(
        5.0, _parse_float(0.1), "How often a worker reports into GET /api/v2/admin/workers."
    )
    worker_lost_after_seconds: float = _setting(
        30.0, _parse_float(0.5), "A worker silent this long is shown lost (and dropped at 10x)."
    )
    worker_metrics_port: int = _setting(
        0, _parse_int(0, 65535), "Prometheus /metrics of a worker on this port; 0 = off."
    )
    default_page_size: int = _setting(100, _parse_int(1), "List page size when none is given.")
    reconcile_interval_seconds: float = _setting(
        2.0, _parse_float(0.05), "How often beat runs reconcile."
    )
    local_backend: str = _setting(
        "process", _parse_choice("process", "kubernetes"), "What backend_type local means."
    )
    worker_concurrency: int = _setting(2, _parse_int(1), "Celery processes per worker.")
    redispatch_after_seconds: float = _setting(
        30.0, _parse_float(0.1), "A Pending job not submitted after this is dispatched again."
    )
    dispatch_lease_seconds: float = _setting(
        15.0,
        _parse_float(1),
        "How long one worker owns a job's submission (renewed while it works).",
    )
    dispatch_attempts: int = _setting(
        10,
        _parse_int(1),
        "Dispatches of one run that may die (worker killed, crash) before the job ends Error.",
    )
    submit_retries: int = _setting(
        5, _parse_int(0), "Retries of a submit that failed for a transient reason."
    )
    default_timeout_minutes: int = _setting(60, _parse_int(1), "Job timeout when none is given.")
    max_timeout_minutes: int = _setting(
        10080, _parse_int(1), "Largest timeout_minutes a job may ask for."
    )
    grace_period_seconds: float = _setting(
        30.0, _parse_float(0), "Wait after a graceful stop before the run is killed."
    )
    log_chunk_bytes: int = _setting(65536, _parse_int(1024), "Largest stored log chunk.")
    log_retention_bytes: int = _setting(
        50_000_000, _parse_int(1024), "Log bytes kept per job; older chunks are dropped."
    )
    event_retention: int = _setting(
        100_000, _parse_int(10), "Status events kept per job; older ones are dropped."
    )
    results_dir: Path | None = _setting(
        None, Path, "Where the process backend puts run directories; unset = data dir."
    )
    slurm_private_key_file: Path | None = _setting(
        None, Path, "SSH key for SLURM login nodes when the workspace gives no ssh_private_key."
    )
    slurm_known_hosts_file: Path | None = _setting(
        None, Path, "known_hosts for SLURM login nodes when the workspace gives none."
    )
    slurm_python: str = _setting(
        "python3", str, "Interpreter on SLURM nodes that runs workloads started as `python`."
    )
    ssh_timeout_seconds: float = _setting(
        30.0, _parse_float(1), "Connect and I/O timeout of every SSH call to a login node."
    )
    inference_timeout_seconds: float = _setting(
        30.0, _parse_float(0.1), "How long the API waits for a model server's answer."
    )
    fetch_allow_hosts: tuple[str, ...] = _setting(
        (),
        _parse_names,
        "Hosts (or IPs) dataset URLs may name although they are loopback or private.",
    )
    local_workspace_root: Path | None = _setting(
        None,
        Path,
        "Local workspaces live in <root>/<org>/ and nowhere else; unset = data dir/workspaces.",
    )
    workspace_storage_check: bool = _setting(
        True, _parse_bool, "Refuse a workspace whose bucket cannot be reached and written."
    )
    node_failure_retries: int = _setting(
        3, _parse_int(0), "Resubmissions from the checkpoint after a node failure or preemption."
    )
    kubernetes_kubeconfig: Path | None = _setting(
        None, Path, "kubeconfig for the Kubernetes backend; unset = in-cluster service account."
    )
    kubernetes_context: str | None = _setting(
        None, str, "kubeconfig context to use; unset = the file's current context."
    )
    kubernetes_namespace: str | None = _setting(
        None, str, "Namespace of the Jobs; unset = the service account's or context's namespace."
    )
    kubernetes_instance: str = _setting(
        "jobyard", str, "Label value telling this deployment's Jobs from others in the namespace."
    )
    kubernetes_images: str = _setting(
        "", str, "Container image per network_arch, as `network=image,...`."
    )
    kubernetes_default_image: str = _setting(
        "jobyard:latest", str, "Image for a network_arch that kubernetes_images does not name."
    )
    kubernetes_service_account: str | None = _setting(
        None, str, "Service account the job pods run as; unset = the namespace's default."
    )
    kubernetes_image_pull_secrets: str = _setting(
        "", str, "Comma-separated secrets for pulling job images from private registries."
    )
    kubernetes_node_selector: str = _setting(
        "", str, "Node labels job pods must match, as `key=value,...`."
    )
    kubernetes_tolerations: str = _setting(
        "", str, "Tolerations of job pods, as a JSON list of Kubernetes toleration objects."
    )
    kubernetes_gpu_resource: str = _setting(
        "nvidia.com/gpu", str, "Extended resource a job's backend_details.num_gpus requests."
    )
    kubernetes_results_claim: str = _setting(
        "jobyard-results", str, "ReadWriteMany PersistentVolumeClaim holding results and status."
    )
    kubernetes_results_host_path: Path | None = _setting(
        None, Path, "hostPath used instead of the claim (single-node clusters, tests)."
    )
    kubernetes_results_mount: str = _setting(
        "/jobyard", str, "Where job pods mount the results volume."
    )
    kubernetes_results_dir: Path | None = _setting(
        None, Path, "Where this worker sees the results volume; unset = the mount path."
    )
    kubernetes_ttl_seconds: int = _setting(
        86400, _parse_int(0), "Finished Jobs jobyard did not delete are removed after this."
    )
    kubernetes_request_timeout_seconds: float = _setting(
        30.0, _parse_float(1), "Timeout of each call to the Kubernetes API server."
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            variable = PREFIX + f.name.upper()
            raw = env.get(variable)
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = f.metadata["parse"](raw)
            except ValueError as e:
                raise SettingsError(variable, str(e)) from e
        unknown = sorted(k for k in env if k.startswith(PREFIX) and k not in _VARIABLES)
        if unknown:
            raise SettingsError(unknown[0], "unknown setting (typo?)")
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def runs_dir(self) -> Path:
        return self.results_dir or self.data_dir / "runs"

    @property
    def workspace_root(self) -> Path:
        return self.local_workspace_root or self.data_dir / "workspaces"

    @property
    def embedded(self) -> bool:
        return self.mongo_uri is None or self.redis_url is None


# the client's own (``jobyard.client.config``): where a person's CLI points, not settings
# of a server, but set in the same shells
CLIENT_VARIABLES = {"JOBYARD_URL", "JOBYARD_CLIENT_CONFIG"}
_VARIABLES = {PREFIX + f.name.upper() for f in dataclasses.fields(Settings)} | CLIENT_VARIABLES


def documentation() -> list[tuple[str, str, str]]:
    """(variable, default, description) rows: the README's configuration table."""
    rows = []
    for f in dataclasses.fields(Settings):
        value = f.default
        default = (
            "unset"
            if value is None
            else ",".join(value)
            if isinstance(value, tuple)
            else str(value)
        )
        rows.append((PREFIX + f.name.upper(), default, f.metadata["doc"]))
    return rows
