"""TAO Toolkit's ``status.json``, read as jobyard status events. Pure functions only.

What TAO writes, as read in its sources (NVIDIA/tao_pytorch_backend 6.25.10,
NVIDIA/tao_tensorflow2_backend 6.0.0, NVIDIA/tao_deploy 6.25.11, NVIDIA/tao-core 6.26.3):

* ``nvidia_tao_pytorch/core/loggers/api_logging.py`` (``BaseLogger.write``,
  ``StatusLogger``), ``nvidia_tao_tf2/common/logging/logging.py`` and
  ``nvidia_tao_deploy/cv/common/logging/status_logging.py``: one ``json.dumps`` object per
  line, the caller's ``data`` keys first, then ``date`` (``"{month}/{day}/{year}"``, not
  zero-padded), ``time`` (``"{hour}:{minute}:{second}"``, not zero-padded, the container's
  local clock, UTC in TAO's images: read here as UTC), ``status`` (SUCCESS, FAILURE,
  STARTED, RUNNING, SKIPPED), ``verbosity`` (DISABLE, DEBUG, INFO, WARNING, ERROR,
  CRITICAL), ``message`` when one was given, then ``categorical``, ``graphical`` and ``kpi``
  whenever the logger holds them. They are attributes of the logger that stay set, so
  every later line repeats the last ones assigned.
* ``nvidia_tao_pytorch/core/callbacks/loggers.py`` (``TAOStatusLogger``, the Lightning
  callback): per train epoch ``epoch`` (``trainer.current_epoch``, 0-based), ``step``,
  ``max_epoch`` (``max_epochs - 1``), ``max_step``, ``time_per_epoch``, ``time_per_step``
  and ``eta`` as ``str(timedelta)`` (``"0:00:12.345678"``, ``"1 day, 2:03:04"``);
  ``nvidia_tao_tf2/cv/classification/callback/csv_callback.py`` writes ``epoch`` 1-based and
  no message.
* ``kpi``: ``nvidia_tao_pytorch/cv/rtdetr/model/pl_rtdetr_model.py`` writes
  ``{"val_mAP": str(mAP), "val_mAP50": str(mAP50), "val_loss": float}`` (numbers as
  strings), ``{"train_loss": float}``, ``{"test_mAP": str, ...}``; ``graphical`` is a dict of
  numbers (``cv/bevfusion/utils/logger.py``); ``categorical`` is ``{metric: {category:
  number}}`` (``nvidia_tao_tf2/cv/efficientdet/scripts/dataset_convert.py``:
  ``{"num_objects": {...}}``).
* ``nvidia_tao_core/microservices/utils/handler_utils.py`` (``StatusParser``, how TAO's own
  API reads these lines): numbers written as strings count (``force_float``; nan and inf
  do not), a dict value counts by its ``"value"``, categorical metrics must be dicts. The
  API's ``stats`` came from AutoML only (``tao_front_end_services/api/automl/utils.py``);
  here they keep the kpi values that are not numbers, which the kpi list cannot hold.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from jobyard.schemas.events import MAX_MESSAGE, Parsed, invalid_line, split_lines

STATUSES = ("STARTED", "RUNNING", "SUCCESS", "FAILURE", "SKIPPED")
_TIMEDELTA = re.compile(r"(?:(-?\d+) days?, )?(\d+):(\d\d):(\d\d(?:\.\d+)?)")
_INTEGERS = ("epoch", "max_epoch", "step", "max_step")
_DURATIONS = ("time_per_epoch", "eta", "time_per_step")
_TEXTS = ("status", "verbosity", "date", "time")


def parse_tao_lines(data: bytes, first_line: int) -> Parsed:
    """Events from the whole lines of a TAO status.json; the contract of
    :func:`jobyard.schemas.events.parse_status_lines` (``seq`` is the line number)."""
    return split_lines(data, first_line, tao_event)


def tao_event(raw: bytes, line_no: int) -> dict[str, Any]:
    """One TAO status line as a jobyard status event."""
    try:
        line = json.loads(raw)
    except ValueError:
        line = None
    if not isinstance(line, dict):
        return invalid_line(raw, line_no)
    event: dict[str, Any] = {"seq": line_no, "type": "status"}
    event.update({k: line[k] for k in _TEXTS if isinstance(line.get(k), str)})
    if isinstance(line.get("message"), str):
        event["message"] = line["message"][:MAX_MESSAGE]
    ts = timestamp(line.get("date"), line.get("time"))
    if ts is not None:
        event["ts"] = ts
    for key in _INTEGERS:
        number = _integer(line.get(key))
        if number is not None:
            event[key] = number
    for key in _DURATIONS:
        seconds = duration(line.get(key))
        if seconds is not None:
            event[key] = seconds
    _metrics(line, event)
    return event


def _metrics(line: Mapping[str, Any], event: dict[str, Any]) -> None:
    """``kpi`` and ``graphical`` as numbers, ``categorical`` as numbers per category, and
    the kpi values that are text as ``stats``."""
    for key in ("kpi", "graphical"):
        values = line.get(key)
        if isinstance(values, Mapping):
            event[key] = _numbers(values)
    kpi = line.get("kpi")
    if isinstance(kpi, Mapping):
        stats = {str(k): _text(v) for k, v in kpi.items() if _text(v) is not None}
        if stats:
            event["stats"] = stats
    categorical = line.get("categorical")
    if isinstance(categorical, Mapping):
        event["categorical"] = {
            str(metric): _numbers(values)
            for metric, values in categorical.items()
            if isinstance(values, Mapping)
        }


def timestamp(date: Any, clock: Any) -> float | None:
    """Epoch seconds of TAO's ``"M/D/YYYY"`` and ``"H:M:S"``, read as UTC."""
    if not (isinstance(date, str) and isinstance(clock, str)):
        return None
    try:
        month, day, year = (int(p) for p in date.split("/"))
        hour, minute, second = (int(p) for p in clock.split(":"))
        when = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)
    except ValueError:
        return None
    return when.timestamp()


def duration(value: Any) -> float | None:
    """Seconds of a ``str(timedelta)`` (``"1 day, 2:03:04.5"``) or a number; None for
    anything else or a negative duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _TIMEDELTA.fullmatch(value.strip())):
        days, hours, minutes, secs = match.groups()
        seconds = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(secs)
    else:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def number(value: Any) -> int | float | None:
    """A finite number as TAO's API counts one: a number, a numeric string, or a dict's
    ``"value"``."""
    if isinstance(value, Mapping):
        value = value.get("value")
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def _numbers(values: Mapping[Any, Any]) -> dict[str, int | float]:
    found = {str(k): number(v) for k, v in values.items()}
    return {k: v for k, v in found.items() if v is not None}


def _text(value: Any) -> str | None:
    """A kpi value that is text rather than a number (a stat), else None; "nan" and
    "inf" are numbers that did not count, as in TAO's API."""
    if isinstance(value, bool):
        return json.dumps(value)
    if not isinstance(value, str):
        return None
    try:
        float(value)
    except ValueError:
        return value[:MAX_MESSAGE]
    return None


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None
