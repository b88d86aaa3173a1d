"""``python -m bench.doubles kubernetes|lepton DIR``: one of the test suite's API doubles
(tests/kubernetes/fake_k8s.py, tests/lepton/fake_lepton.py) in a process of its own.

The pools phase times what one worker process carries. In that process, a double's
threads (a job controller per Kubernetes Job waking every 50 ms, an HTTP handler per
request) would compete with the code measured for the GIL, and a real API server is
never in the worker. Here the double runs beside it, as a cluster would.

DIR/results is the results volume its runs see. What the worker needs to reach the
double is written to DIR/double.json once it listens (``worker_env`` for Kubernetes,
the workspace's ``cloud_specific_details`` for Lepton). SIGTERM stops it: every run
it started is killed first.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

from jobyard.backends.lepton.config import DEFAULT_RESULTS_ROOT
from tests.kubernetes.conftest import kube_env
from tests.kubernetes.fake_k8s import FakeKubernetes
from tests.lepton.conftest import TOKEN, WORKSPACE, workspace_details
from tests.lepton.fake_lepton import FakeLepton

INFO = "double.json"
STOPS = (signal.SIGINT, signal.SIGTERM)


def volume(directory: Path) -> Path:
    return directory / "results"


def _kubernetes(directory: Path) -> tuple[Any, dict[str, Any]]:
    fake = FakeKubernetes().start()
    return fake, {"worker_env": kube_env(fake, volume(directory))}


def _lepton(directory: Path) -> tuple[Any, dict[str, Any]]:
    results = str(volume(directory))
    fake = FakeLepton(
        token=TOKEN, workspace=WORKSPACE, path_map={DEFAULT_RESULTS_ROOT: results}
    ).start()
    return fake, {"workspace": workspace_details(fake, results_root=results)}


DOUBLES = {"kubernetes": _kubernetes, "lepton": _lepton}


def _stop(signum: int, _frame: object) -> None:
    """Raised in the main thread, whatever it is doing (waiting in ``pause`` or not yet):
    a handler, not a blocked mask and sigwait, because the runs the double starts inherit
    the mask, and a `sleep` with SIGTERM blocked would outlive every graceful stop."""
    raise SystemExit(0)


def main(argv: list[str]) -> int:
    kind, directory = argv[0], Path(argv[1])
    volume(directory).mkdir(parents=True, exist_ok=True)
    for signum in STOPS:
        signal.signal(signum, _stop)
    fake, info = DOUBLES[kind](directory)
    try:
        written = directory / f".{INFO}.tmp"
        written.write_text(json.dumps({"url": fake.url, **info}))
        written.replace(directory / INFO)  # whole or absent for the reader
        while True:
            signal.pause()
    finally:
        fake.stop()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
