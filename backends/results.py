"""Paths inside a job's results directory, checked as pure functions so every backend
refuses the same escapes (``..``, absolute paths) the same way."""

from __future__ import annotations

import posixpath

from backends.errors import ResultNotFound


def relative_result_path(path: str) -> str:
    """``path`` normalised to a "/"-separated path inside the results directory."""
    cleaned = posixpath.normpath(path.replace("\\", "/").lstrip("/"))
    if cleaned in ("", ".") or cleaned == ".." or cleaned.startswith("../") or "\0" in cleaned:
        raise ResultNotFound(f"{path!r} is not a file inside the job's results")
    return cleaned
