"""Timing helpers and the figure record every phase returns."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def latencies(
    call: Callable[[int], object], count: int, budget: float, minimum: int = 5
) -> list[float]:
    """Seconds per call of ``call(i)``, sequentially, for ``count`` calls or until
    ``budget`` seconds are spent (at least ``minimum`` calls)."""
    out: list[float] = []
    deadline = time.perf_counter() + budget
    for i in range(count):
        start = time.perf_counter()
        call(i)
        out.append(time.perf_counter() - start)
        if len(out) >= minimum and time.perf_counter() > deadline:
            break
    return out


def concurrent_rate(call: Callable[[int], object], count: int, clients: int) -> float:
    """Calls per second of ``count`` calls of ``call(i)`` spread over ``clients`` threads."""
    lock = threading.Lock()
    next_index = [0]
    errors: list[BaseException] = []

    def run() -> None:
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= count or errors:
                return
            try:
                call(i)
            except BaseException as e:  # reported after the threads joined
                errors.append(e)
                return

    threads = [threading.Thread(target=run) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return count / elapsed


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def wait_until(check: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> float:
    """Poll ``check`` until true; seconds waited. Raises TimeoutError naming ``what``."""
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"{what}: not done within {timeout:.0f}s")
        time.sleep(step)
    return time.perf_counter() - start


@dataclass
class Figure:
    """One line of the table: jobyard's number, the baseline's, their ratio."""

    name: str
    unit: str
    value: float
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    met: bool | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        assert self.baseline is not None
        return self.value / self.baseline

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}
