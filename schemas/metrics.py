"""Metrics as ClearML models them (seed 004): ``scalar`` events are points of a
metric/variant curve, ``plot`` and ``vector`` events hang off an iteration. Pure
functions: the running summary per curve kept on the job (``last_metrics``), the curves of
a job's events, and their downsampling for long runs."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

STATS = ("first", "last", "min", "max", "mean", "count", "min_iteration", "max_iteration")
EVENT_TYPES = ("scalar", "plot", "vector", "log")
# what each kind of event carries besides metric, variant and iteration (seed 004)
PAYLOAD = {"plot": ("plot_str",), "vector": ("values",), "log": ("level", "msg")}
MAX_POINTS = 10_000
_UNSAFE = re.compile(r"[.$\x00]")


def key(name: Any) -> str:
    """A metric or variant name as a field name: no ``.``, ``$`` or NUL, never empty."""
    return _UNSAFE.sub("_", str(name))[:100] or "_"


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def scalars(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The well-formed scalar events: a metric, a variant and a finite value."""
    return [
        e
        for e in events
        if e.get("type") == "scalar" and e.get("metric") is not None and _number(e.get("value"))
    ]


def fold_last_metrics(
    previous: Mapping[str, Mapping[str, Mapping[str, Any]]],
    events: Iterable[Mapping[str, Any]],
) -> dict[str, dict[str, dict[str, Any]]]:
    """The curves these events change, each with its summary after them: first, last,
    min, max, mean, count and the iterations of min and max (metric -> variant -> stats)."""
    changed: dict[str, dict[str, dict[str, Any]]] = {}
    for event in scalars(events):
        metric = key(event["metric"])
        variant = key(event.get("variant") or event["metric"])
        before = changed.get(metric, {}).get(variant) or previous.get(metric, {}).get(variant)
        value = float(event["value"])
        iteration = event.get("iteration")
        if not before:
            stats: dict[str, Any] = {
                "first": value,
                "last": value,
                "min": value,
                "max": value,
                "mean": value,
                "count": 1,
                "min_iteration": iteration,
                "max_iteration": iteration,
            }
        else:
            count = int(before["count"]) + 1
            stats = dict(before)
            stats["last"] = value
            stats["count"] = count
            stats["mean"] = float(before["mean"]) + (value - float(before["mean"])) / count
            if value < float(before["min"]):
                stats["min"], stats["min_iteration"] = value, iteration
            if value > float(before["max"]):
                stats["max"], stats["max_iteration"] = value, iteration
        changed.setdefault(metric, {})[variant] = stats
    return changed


def downsample(points: list[tuple[float, float, float | None]], max_points: int) -> list[Any]:
    """At most ``max_points`` of a curve's (x, y, time) points, in x order, keeping the
    lowest and highest y of each bucket so spikes survive, and the first and last point."""
    if len(points) <= max_points:
        return points
    buckets = max(1, (max_points - 2) // 2)
    inner = points[1:-1]
    size = len(inner) / buckets
    kept = [points[0]]
    for b in range(buckets):
        chunk = inner[int(b * size) : int((b + 1) * size)]
        if not chunk:
            continue
        low = min(chunk, key=lambda p: p[1])
        high = max(chunk, key=lambda p: p[1])
        kept.extend(sorted({low, high}, key=lambda p: (p[0], p[1])))
    kept.append(points[-1])
    return kept


def curves(
    docs: Iterable[Mapping[str, Any]],
    max_points: int,
    metric: str | None = None,
    variant: str | None = None,
) -> dict[str, dict[str, dict[str, list[Any]]]]:
    """metric -> variant -> {"x": iterations, "y": values, "t": times (when the documents
    have them), "run": runs} from
    curve documents (``store.curves``: one per metric and variant, every run in order),
    each downsampled to ``max_points``. ``metric`` also takes TAO's joined name:
    ``val_accuracy`` is variant ``val`` of ``accuracy``."""
    out: dict[str, dict[str, dict[str, list[Any]]]] = {}
    for doc in docs:
        m, v = str(doc["metric"]), str(doc["variant"])
        if not _wanted(metric, variant, m, v):
            continue
        times = doc.get("t") or [None] * len(doc["x"])
        rows = list(zip(doc["x"], doc["y"], times, doc["run"], strict=True))
        runs = {(x, y, t): r for x, y, t, r in rows}
        kept = downsample([(x, y, t) for x, y, t, _ in rows], max_points)
        curve = {"x": [p[0] for p in kept], "y": [p[1] for p in kept]}
        if doc.get("t"):
            curve["t"] = [p[2] for p in kept]
        curve["run"] = [runs[p] for p in kept]
        out.setdefault(m, {})[v] = curve
    return out


def _wanted(metric: str | None, variant: str | None, m: str, v: str) -> bool:
    """``metric`` names a curve's metric, or TAO's joined ``<variant>_<metric>``."""
    return (not metric or metric in (m, f"{v}_{m}")) and (not variant or v == variant)


def matching(
    last_metrics: Mapping[str, Mapping[str, Any]], metric: str | None, variant: str | None
) -> dict[str, Any]:
    """variant -> stats of the curves ``metric`` (and ``variant``) name."""
    return {
        v: stats
        for m, variants in last_metrics.items()
        for v, stats in variants.items()
        if _wanted(metric and key(metric), variant and key(variant), m, v)
    }


def attached(events: Iterable[Mapping[str, Any]], kind: str, metric: str | None) -> list[Any]:
    """Plot, vector or log events as ClearML returns them: metric, variant, iteration and
    the payload (``plot_str`` for plots, ``values`` for vectors, ``level`` and ``msg`` for
    logs)."""
    return [
        {
            "metric": e.get("metric"),
            "variant": e.get("variant"),
            "iteration": e.get("iteration"),
            "run": e.get("run"),
            "ts": e.get("ts"),
            **{field: e.get(field) for field in PAYLOAD[kind]},
        }
        for e in events
        if e.get("type") == kind and (not metric or e.get("metric") == metric)
    ]
