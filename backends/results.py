"""A job's results directory: paths inside it, checked the same way by every backend
(``..`` and absolute paths refused), and listing/opening it where this worker can read it."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from jobyard.backends.base import Handle, ResultFile
from jobyard.backends.errors import BackendUnavailable, ResultNotFound


def relative_result_path(path: str) -> str:
    """``path`` normalised to a "/"-separated path inside the results directory."""
    cleaned = posixpath.normpath(path.replace("\\", "/").lstrip("/"))
    if cleaned in ("", ".") or cleaned == ".." or cleaned.startswith("../") or "\0" in cleaned:
        raise ResultNotFound(f"{path!r} is not a file inside the job's results")
    return cleaned


def results_root(handle: Handle) -> str:
    """The results directory a run's handle records, as the backend names it."""
    value = handle.data.get("results_dir")
    if not value:
        raise ResultNotFound(f"run {handle.name} has no results directory")
    return str(value)


def list_local(root: Path, name: str) -> list[ResultFile]:
    """Every regular file under a results directory this worker can read (the process
    backend's, or a shared volume's); symlinks are skipped so nothing outside is listed."""
    files = []
    try:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                stat = path.stat()
                relative = path.relative_to(root).as_posix()
                files.append(ResultFile(relative, stat.st_size, stat.st_mtime))
    except FileNotFoundError:
        return []
    except OSError as e:
        raise BackendUnavailable(f"cannot list results of {name}: {e}") from e
    return files


def delete_local(files: Sequence[tuple[Handle, str]]) -> int:
    """Remove result files under local results directories; missing ones are skipped. A
    path outside its results directory is refused before anything is removed."""
    targets = []
    for handle, path in files:
        base = Path(results_root(handle)).resolve()
        target = (base / relative_result_path(path)).resolve()
        if not target.is_relative_to(base):
            raise ResultNotFound(f"{path!r} is not a file inside the results of {handle.name}")
        targets.append((handle, path, target))
    removed = 0
    for handle, path, target in targets:
        try:
            target.unlink()
        except FileNotFoundError:
            continue
        except OSError as e:
            raise BackendUnavailable(f"cannot delete {path} of {handle.name}: {e}") from e
        removed += 1
    return removed


def open_local(root: Path, path: str, name: str) -> IO[bytes]:
    """One result file under a local results directory, opened for streaming."""
    base = root.resolve()
    target = (base / relative_result_path(path)).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        raise ResultNotFound(f"{path!r} is not a result file of {name}")
    return open(target, "rb")
