"""jobs:gpu_types for an org with a workspace on the real cluster: its one sinfo over SSH.
The test cluster has no GPUs, so its one partition is ``cpu``; the gres formats of GPU
clusters are pinned by the parser's golden test (tests/unit/test_accelerators.py)."""

from __future__ import annotations

import pytest

from jobyard.api import accelerators
from jobyard.api.services import services
from tests.slurm.cluster import workspace

pytestmark = pytest.mark.integration


def test_a_cpu_only_cluster_answers_cpu_per_partition(slurm_cluster, app, login):
    s = login()
    ws = workspace(s, slurm_cluster)
    with app.app_context():
        answer = accelerators.gpu_types(services(app), "acme")
    assert answer == {
        "gpu_types": ["cpu"],
        "backends": [
            {
                "backend": "process",
                "accelerators": [{"name": "cpu", "count": 0, "where": "local", "nodes": 1}],
            },
            {
                "backend": f"slurm:{ws}",
                "accelerators": [
                    {"name": "cpu", "count": 0, "where": slurm_cluster.partition, "nodes": 1}
                ],
            },
        ],
    }
