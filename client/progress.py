"""What a person watching a job wants to see, read from the job document: pure, so the
SDK's ``wait(progress=True)`` and the CLI's ``jobs watch`` show the same thing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FINISHED = ("Done", "Error", "Canceled", "Paused")
# a job's final state as a process exit code (``jobyard jobs watch``)
EXIT_CODES = {"Done": 0, "Error": 1, "Canceled": 2, "Paused": 3}


@dataclass(frozen=True)
class Progress:
    status: str
    epoch: int
    max_epoch: int | None
    loss: float | None
    accuracy: float | None
    eta: str | None
    message: str

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def summary(self) -> str:
        """``epoch 3/5 · loss 0.41 · accuracy 0.93 · ETA 0:00:04``: what is known so far."""
        parts = [
            f"epoch {self.epoch}/{self.max_epoch}" if self.max_epoch else f"epoch {self.epoch}"
        ]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4g}")
        if self.accuracy is not None:
            parts.append(f"accuracy {self.accuracy:.4g}")
        if self.eta and not self.finished:
            parts.append(f"ETA {self.eta}")
        return " · ".join(parts)


def _last(details: Mapping[str, Any], names: tuple[str, ...]) -> float | None:
    """The newest value of the first of ``names`` the job reports (curves, then kpi)."""
    curves = {g.get("metric"): g.get("values") for g in details.get("graphical") or []}
    for name in names:
        values = curves.get(name)
        if values:
            return float(values[-1])
    kpi = {k.get("metric"): k.get("value") for k in details.get("kpi") or []}
    for name in names:
        if isinstance(kpi.get(name), int | float):
            return float(kpi[name])
    return None


def of_job(job: Mapping[str, Any]) -> Progress:
    details = job.get("job_details") or {}
    epoch = details.get("epoch") or details.get("cur_epoch") or 0
    max_epoch = details.get("max_epoch")
    return Progress(
        status=str(job.get("status", "")),
        epoch=int(epoch),
        max_epoch=int(max_epoch) if max_epoch else None,
        loss=_last(details, ("loss", "train_loss", "val_loss")),
        accuracy=_last(details, ("val_accuracy", "accuracy", "best_val_accuracy")),
        eta=details.get("eta"),
        message=str((details.get("detailed_status") or {}).get("message") or ""),
    )
