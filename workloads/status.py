"""The status-event writer: one JSON object per line, appended to ``JY_STATUS_FILE``.

jobyard's backends tail this file to learn a job's state, so every line is flushed and
fsynced as it is written (a crash loses at most the event being written), and ``seq``
continues after any lines already in the file, so a requeued run never reuses a number.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

STATUSES = ("STARTED", "RUNNING", "SUCCESS", "FAILURE", "PAUSED")


def jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars/arrays become Python ones, NaN/inf become null."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class StatusWriter:
    """Appends status and scalar events to one run's status file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._seq = self._existing_lines()

    def _existing_lines(self) -> int:
        """Lines already in the file; a torn last line is terminated so ours start cleanly."""
        try:
            content = self.path.read_bytes()
        except FileNotFoundError:
            return 0
        if content and not content.endswith(b"\n"):
            with open(self.path, "ab") as fh:
                fh.write(b"\n")
            content += b"\n"
        return content.count(b"\n")

    @property
    def last_seq(self) -> int:
        """The ``seq`` of the newest line in the file (0 if it is empty)."""
        return self._seq

    def write(self, event_type: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Append one event of ``event_type``; ``seq`` and ``ts`` are filled in here."""
        self._seq += 1
        event: dict[str, Any] = {"seq": self._seq, "ts": time.time(), "type": event_type}
        event.update(jsonable(fields))
        line = json.dumps(event, allow_nan=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        return event

    def status(self, status: str, message: str, **fields: Any) -> dict[str, Any]:
        """A ``type: "status"`` event, e.g. ``status("RUNNING", "epoch 3/10", epoch=3)``."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        return self.write("status", {"status": status, "message": message, **fields})

    def plot(
        self, metric: str, variant: str, iteration: int, figure: dict[str, Any]
    ) -> dict[str, Any]:
        """A ClearML-style plot event: a Plotly figure as JSON text in ``plot_str``."""
        text = json.dumps(jsonable(figure), allow_nan=False)
        fields = {"metric": metric, "variant": variant, "iteration": iteration, "plot_str": text}
        return self.write("plot", fields)

    def scalar(
        self, metric: str, variant: str, iteration: int, value: float, message: str = ""
    ) -> dict[str, Any]:
        """A ClearML-style scalar event: one point of the ``metric``/``variant`` curve."""
        return self.write(
            "scalar",
            {
                "message": message,
                "metric": metric,
                "variant": variant,
                "iteration": iteration,
                "value": float(value),
            },
        )
