"""The SLURM tests' fixtures. The cluster itself (``slurm_cluster``, one per session) is
the plugin ``tests/slurm/cluster.py``, shared with the backend contract suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobyard.backends.slurm.ssh import SshRunner
from tests.slurm.cluster import SlurmCluster


@pytest.fixture
def ssh_runner(slurm_cluster: SlurmCluster) -> Iterator[SshRunner]:
    with slurm_cluster.runner() as runner:
        yield runner
