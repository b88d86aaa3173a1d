"""Transfer progress as seed 000 shows it ("Current file upload: ...",
"Total Upload Progress: 2/4 files (50.0%), 8.0 MB/1.0 GB (0.8%)",
"Remaining: 2 files, 1.0 GB, ETA: 0:44:39"), computed from byte counts and
a clock passed in, so it is a pure, testable object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1000
    raise AssertionError("unreachable")


def clock_text(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _percent(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 1) if whole else 100.0


@dataclass
class Progress:
    """Counts for one batch of files moving in one direction."""

    direction: str  # "upload" or "download"
    files_total: int
    bytes_total: int
    started: float
    files_done: int = 0
    bytes_done: int = 0
    current: str = ""
    current_size: int = 0
    current_done: int = 0

    def begin_file(self, name: str, size: int) -> None:
        self.current, self.current_size, self.current_done = name, size, 0

    def moved(self, count: int) -> None:
        self.bytes_done += count
        self.current_done += count

    def end_file(self) -> None:
        self.files_done += 1

    def rate(self, now: float) -> float | None:
        """Bytes per second since the start (None before anything moved)."""
        elapsed = now - self.started
        return self.bytes_done / elapsed if elapsed > 0 and self.bytes_done else None

    def snapshot(self, now: float) -> dict[str, Any]:
        rate = self.rate(now)
        left_bytes = max(0, self.bytes_total - self.bytes_done)
        eta = left_bytes / rate if rate else None
        word = self.direction.capitalize()
        lines = [
            f"Current file {self.direction}: {self.current}",
            f"Current file {self.direction} Progress: {human(self.current_done)}/"
            f"{human(self.current_size)} ({_percent(self.current_done, self.current_size)}%)",
            f"Total {word} Progress: {self.files_done}/{self.files_total} files "
            f"({_percent(self.files_done, self.files_total)}%), {human(self.bytes_done)}/"
            f"{human(self.bytes_total)} ({_percent(self.bytes_done, self.bytes_total)}%)",
            f"Remaining: {self.files_total - self.files_done} files, {human(left_bytes)}, "
            f"ETA: {clock_text(eta) or 'unknown'}",
        ]
        return {
            "direction": self.direction,
            "current_file": self.current,
            "current_file_bytes": self.current_done,
            "current_file_size": self.current_size,
            "files_done": self.files_done,
            "files_total": self.files_total,
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "percent": _percent(self.bytes_done, self.bytes_total),
            "rate_bytes_per_second": round(rate, 1) if rate else None,
            "eta_seconds": round(eta, 1) if eta is not None else None,
            "eta": clock_text(eta),
            "message": "\n".join(lines),
        }
