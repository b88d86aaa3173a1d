"""The Lepton double, started per test on a free loopback port.

``/jobyard`` (the backend's default results root, a shared volume on real Lepton) maps to
a directory under the test's ``tmp_path``, so runs of one job share checkpoints as they
would on the volume.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobyard.backends.lepton.client import LeptonClient
from jobyard.backends.lepton.config import DEFAULT_RESULTS_ROOT
from tests.lepton.fake_lepton import FakeLepton, NodeGroup

TOKEN = "lepton-token-7f3a9c"
WORKSPACE = "testws"


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    path = tmp_path / "volume"
    path.mkdir()
    return path


@pytest.fixture
def node_groups() -> list[NodeGroup]:
    """The workspace's dedicated node groups on the double; parametrize to change them."""
    return []


@pytest.fixture
def fake(volume: Path, node_groups: list[NodeGroup]) -> Iterator[FakeLepton]:
    double = FakeLepton(
        token=TOKEN,
        workspace=WORKSPACE,
        path_map={DEFAULT_RESULTS_ROOT: str(volume)},
        grace_seconds=10.0,
        node_groups=node_groups,
    ).start()
    yield double
    double.stop()


@pytest.fixture
def lepton(fake: FakeLepton) -> LeptonClient:
    return LeptonClient(fake.url, TOKEN, WORKSPACE, timeout_seconds=10.0)


def workspace_details(
    fake: FakeLepton, token: str = TOKEN, results_root: str | None = None
) -> dict[str, Any]:
    found = {
        "lepton_workspace_id": WORKSPACE,
        "lepton_auth_token": token,
        "lepton_api_url": fake.url,
        "storage_backend": {
            "storage_type": "seaweedfs",
            "access_key": "ak",
            "secret_key": "sk-seaweed",
            "endpoint_url": "http://127.0.0.1:1",
            "cloud_bucket_name": "results",
        },
    }
    if results_root:
        found["lepton_results_root"] = results_root
    return found


def lepton_workspace(
    s: Any, fake: FakeLepton, token: str = TOKEN, results_root: str | None = None
) -> str:
    """A ``lepton`` workspace on the double, created through the API; returns its id.

    ``results_root``: the shared volume's path in the containers. The double runs them
    here, so the local volume's own path makes every path the same inside and out (a
    spec file naming a checkpoint included, which the double's path map cannot rewrite).
    """
    body = {
        "name": "lepton",
        "cloud_type": "lepton",
        "cloud_specific_details": workspace_details(fake, token, results_root),
    }
    created = s.call("POST", "workspaces", json=body)
    assert created.status_code == 201, created.json
    return str(created.json["id"])


def lepton_id(store: Any, job_id: str) -> str:
    """The Lepton job running the job's current run."""
    return str(store.jobs.find(job_id)["handle"]["data"]["lepton_job"])
