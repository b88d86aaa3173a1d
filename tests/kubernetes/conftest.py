"""Fixtures for the Kubernetes backend: the API server double on a free loopback port,
a kubeconfig pointing at it, and settings whose results volume is a local directory
(a hostPath that the fake node's processes and the worker see at the same path)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jobyard.backends.kubernetes.backend import KubernetesBackend
from jobyard.schemas.settings import Settings
from tests.kubernetes.fake_k8s import FakeKubernetes, Node


@pytest.fixture
def nodes() -> list[Node] | None:
    """The double's nodes (None: one CPU node); parametrize ``nodes`` to change them."""
    return None


@pytest.fixture
def fake(nodes: list[Node] | None) -> Iterator[FakeKubernetes]:
    server = FakeKubernetes(nodes=nodes).start()
    yield server
    server.stop()


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    path = tmp_path / "volume"
    path.mkdir()
    return path


def kube_env(fake: FakeKubernetes, volume: Path, token: str | None = None) -> dict[str, str]:
    """The worker's ``JOBYARD_KUBERNETES_*`` variables for the double."""
    kubeconfig = fake.write_kubeconfig(volume.parent, token=token)
    return {
        "JOBYARD_LOCAL_BACKEND": "kubernetes",
        "JOBYARD_KUBERNETES_KUBECONFIG": str(kubeconfig),
        "JOBYARD_KUBERNETES_RESULTS_HOST_PATH": str(volume),
        "JOBYARD_KUBERNETES_RESULTS_MOUNT": str(volume),
        "JOBYARD_KUBERNETES_RESULTS_DIR": str(volume),
        "JOBYARD_KUBERNETES_REQUEST_TIMEOUT_SECONDS": "5",
    }


@pytest.fixture
def kube_settings(fake: FakeKubernetes, volume: Path) -> Settings:
    env = {k: v for k, v in kube_env(fake, volume).items()}
    env["JOBYARD_GRACE_PERIOD_SECONDS"] = "3"
    env["JOBYARD_DATA_DIR"] = str(volume.parent / "data")
    return Settings.from_env(env)


@pytest.fixture
def backend(kube_settings: Settings) -> Iterator[KubernetesBackend]:
    found = KubernetesBackend.from_config(kube_settings, {})
    yield found
    found.close()


def api_settings(settings: Settings, fake: FakeKubernetes, volume: Path) -> Settings:
    """The API's settings too: ``backend_type: local`` must mean Kubernetes when jobs are
    created, not only in the worker."""
    return settings.replace(
        local_backend="kubernetes",
        kubernetes_kubeconfig=fake.write_kubeconfig(volume.parent),
        kubernetes_results_host_path=volume,
        kubernetes_results_mount=str(volume),
        kubernetes_results_dir=volume,
    )


@pytest.fixture
def settings(settings: Settings, fake: FakeKubernetes, volume: Path) -> Settings:
    return api_settings(settings, fake, volume)
