"""jobyard's reference workload: a small numpy MLP that really trains on the digits data.

It exists so that every backend (local processes, containers, clusters) can be tested against
one program that obeys the workload contract described in ``workloads/README.md``: environment
variables in, JSON-lines status events and files in the results directory out, exit code 75
for "paused, resume me later".
"""

from __future__ import annotations

from jobyard.workloads.specs import ACTIONS, DATASET_ACTIONS, EXPERIMENT_ACTIONS

__all__ = ["ACTIONS", "DATASET_ACTIONS", "EXPERIMENT_ACTIONS"]
