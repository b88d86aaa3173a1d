"""Running the reference workload in this process, as a backend would start it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from jobyard.workloads import classifier, data


class Runner:
    """Runs actions in this process with a fresh JY_* environment each time."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp
        self.monkeypatch = monkeypatch
        self.count = 0

    def __call__(
        self, action: str, spec: dict[str, Any], **env: str
    ) -> tuple[int, list[dict[str, Any]], Path]:
        self.count += 1
        results = self.tmp / f"results-{action}-{self.count}"
        status = self.tmp / f"status-{action}-{self.count}.jsonl"
        spec_file = self.tmp / f"spec-{action}-{self.count}.json"
        spec_file.write_text(json.dumps(spec))
        for name in [n for n in os.environ if n.startswith("JY_")]:
            self.monkeypatch.delenv(name)
        values = {
            "JY_JOB_ID": f"job-{action}",
            "JY_RUN": "1",
            "JY_ACTION": action,
            "JY_SPECS_FILE": str(spec_file),
            "JY_RESULTS_DIR": str(results),
            "JY_STATUS_FILE": str(status),
            **env,
        }
        for name, value in values.items():
            self.monkeypatch.setenv(name, value)
        data._loaded.cache_clear()  # the rows train reads depend on JY_TRAIN_DATASET_DIRS
        code = classifier.main([])
        events = [json.loads(line) for line in status.read_text().splitlines()]
        return code, events, results
