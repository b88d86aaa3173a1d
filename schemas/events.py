"""Status events: parsing the workload's JSON lines and folding them into the
job's ``job_details`` (seed 002's result block). Pure functions only."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jobyard.schemas.metrics import fold_last_metrics

MAX_MESSAGE = 2000
SERIES_LIMIT = 10_000  # points kept per graphical metric


@dataclass(frozen=True)
class Parsed:
    events: list[dict[str, Any]]
    lines: int  # complete lines consumed
    consumed: int  # bytes consumed


LineParser = Callable[[bytes, int], dict[str, Any]]  # (raw line, line number) -> event


def parse_status_lines(data: bytes, first_line: int) -> Parsed:
    """Events from whole JSON lines; a trailing partial line is left for later.

    ``first_line`` is how many lines of the file were consumed before, so an
    event without its own ``seq`` gets its line number: re-reading the same
    bytes always yields the same (run, seq) keys.
    """
    return split_lines(data, first_line, _parse_line)


def split_lines(data: bytes, first_line: int, parse_line: LineParser) -> Parsed:
    """``parse_line`` applied to each whole line of ``data``, numbered from
    ``first_line + 1``; a trailing partial line is left unconsumed."""
    end = data.rfind(b"\n") + 1
    if end == 0:
        return Parsed([], 0, 0)
    lines = data[:end].split(b"\n")[:-1]
    events = [parse_line(raw, first_line + index + 1) for index, raw in enumerate(lines)]
    return Parsed(events, len(lines), end)


def invalid_line(raw: bytes, line_no: int) -> dict[str, Any]:
    """The event kept for a line that is not a JSON object, so it stays visible."""
    text = raw.decode("utf-8", "replace")[:200]
    return {"seq": line_no, "type": "invalid", "message": f"unparseable status line: {text}"}


def _parse_line(raw: bytes, line_no: int) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        return invalid_line(raw, line_no)
    seq = value.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        value["seq"] = line_no
    value.setdefault("type", "status")
    if isinstance(value.get("message"), str):
        value["message"] = value["message"][:MAX_MESSAGE]
    return value


def _clock(seconds: Any) -> str | None:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        return None
    whole = int(seconds)
    frac = seconds - whole
    text = f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
    return f"{text}.{int(frac * 100):02d}" if frac else text


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class Summary:
    """What a batch of events changes on the job document."""

    details: dict[str, Any] = field(default_factory=dict)  # job_details.<key> -> value
    series: dict[str, list[list[float]]] = field(default_factory=dict)  # metric -> [x, y]
    # last_metrics.<metric>.<variant> -> its summary, for the curves the events changed
    last_metrics: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


def summarize(
    events: Iterable[Mapping[str, Any]],
    kpi: Iterable[Mapping[str, Any]] | None = None,
    last_metrics: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
) -> Summary:
    """Fold status events into ``job_details``: progress, ``categorical`` and ``stats`` from
    the newest event carrying them, ``kpi`` merged metric by metric over the job's ``kpi``
    so far (a TAO epoch line with only ``train_loss`` keeps the last ``val_mAP``),
    ``graphical`` points per epoch, ``detailed_status`` from the newest; ``scalar`` events
    move their curves' ``last_metrics`` on from the job's."""
    events = list(events)
    out = Summary(last_metrics=fold_last_metrics(last_metrics or {}, events))
    known = {str(k["metric"]): k["value"] for k in kpi or () if "metric" in k}
    merged = dict(known)
    last: Mapping[str, Any] | None = None
    message = ""
    for event in events:
        if event.get("type") not in ("status", None):
            continue
        last = event
        if isinstance(event.get("message"), str):
            message = event["message"]  # a TAO line without one keeps the previous
        _progress(event, out)
        _results(event, out)
        if isinstance(event.get("kpi"), Mapping):
            merged.update({str(k): v for k, v in event["kpi"].items() if _number(v)})
    if merged != known:
        out.details["kpi"] = [{"metric": k, "value": v} for k, v in merged.items()]
    if last is not None:
        out.details["detailed_status"] = _detailed_status(last, message)
    return out


def _progress(event: Mapping[str, Any], out: Summary) -> None:
    epoch = event.get("epoch")
    for key in ("epoch", "max_epoch"):
        if isinstance(event.get(key), int):
            out.details[key] = event[key]
    if isinstance(epoch, int):
        out.details["cur_epoch"] = epoch
    for key in ("time_per_epoch", "eta"):
        if key in event and _clock(event[key]) is not None:
            out.details[key] = _clock(event[key])
    if isinstance(event.get("checkpoint"), str):
        out.details["checkpoint"] = event["checkpoint"]
    graphical = event.get("graphical")
    if isinstance(graphical, Mapping) and isinstance(epoch, int):
        for metric, value in graphical.items():
            if _number(value):
                name = str(metric).replace(".", "_").lstrip("$")  # a safe field name
                out.series.setdefault(name, []).append([epoch, float(value)])


def _results(event: Mapping[str, Any], out: Summary) -> None:
    """Seed 002's categorical ({metric, category_wise_values: [{category, value}]}) and
    stats ({metric, value: string}); kpi ({metric, value: number}) is merged by the caller."""
    categorical, stats = event.get("categorical"), event.get("stats")
    if isinstance(categorical, Mapping):
        out.details["categorical"] = [
            {
                "metric": metric,
                "category_wise_values": [
                    {"category": str(c), "value": v} for c, v in values.items() if _number(v)
                ],
            }
            for metric, values in categorical.items()
            if isinstance(values, Mapping)
        ]
    if isinstance(stats, Mapping):
        out.details["stats"] = [{"metric": k, "value": str(v)} for k, v in stats.items()]


def _detailed_status(last: Mapping[str, Any], message: str) -> dict[str, str]:
    """Only the newest event is shown: its time formatted once per batch, or the
    workload's own date and time strings when it wrote them (TAO does)."""
    date, clock = last.get("date"), last.get("time")
    if not (isinstance(date, str) and isinstance(clock, str)):
        ts = last.get("ts")
        stamp = time.gmtime(float(ts) if isinstance(ts, int | float) else time.time())
        date, clock = time.strftime("%m/%d/%Y", stamp), time.strftime("%H:%M:%S", stamp)
    status = str(last.get("status") or "")
    return {"date": date, "time": clock, "message": message, "status": status}


def graphical(series: Mapping[str, Mapping[str, list[float]]]) -> list[dict[str, Any]]:
    """Seed 002's ``graphical`` entries from the stored series ({"x": epochs, "y": values})."""
    out = []
    for metric, axes in sorted(series.items()):
        xs, ys = list(axes.get("x", [])), list(axes.get("y", []))
        if not xs or len(xs) != len(ys):
            continue
        out.append(
            {
                "metric": metric,
                "x_min": int(min(xs)),
                "x_max": int(max(xs)),
                "y_min": min(ys),
                "y_max": max(ys),
                "values": ys,
                "units": "epoch",
            }
        )
    return out


def event_text(event: Mapping[str, Any]) -> str:
    """One line per event, as TAO's JobEventsRsp shows them."""
    epoch, max_epoch = event.get("epoch"), event.get("max_epoch")
    metrics = event.get("graphical") if isinstance(event.get("graphical"), Mapping) else {}
    if event.get("type") == "scalar":
        return (
            f"Iteration {event.get('iteration')} - {event.get('metric')}/"
            f"{event.get('variant')}: {event.get('value')}"
        )
    if event.get("type") == "plot":
        return (
            f"Plot {event.get('metric')}/{event.get('variant')} "
            f"at iteration {event.get('iteration')}"
        )
    if isinstance(epoch, int) and metrics and event.get("status") == "RUNNING":
        parts = [f"{k}: {v:.4g}" if _number(v) else f"{k}: {v}" for k, v in metrics.items()]
        return " - ".join([f"Epoch {epoch}/{max_epoch}", *parts])
    status = event.get("status") or event.get("type", "")
    return f"[{status}] {event.get('message', '')}".strip()
