"""Small JSON file helpers shared by the backend and the launcher.

Readers in other processes may look at any moment, so every write is atomic (a temporary
file in the same directory, then ``os.replace``): a reader sees the old file or the whole
new one, never half of it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_json(path: Path, doc: Any) -> None:
    """Write ``doc`` as JSON to ``path`` so no reader ever sees a partial file.

    Not fsynced: a run's bookkeeping matters only while this machine is up (its
    processes do not survive a crash either), and a sync per submit costs more than the
    launch itself.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(doc), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None if the file does not exist (yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return doc
