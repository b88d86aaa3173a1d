"""The admins' backup and restore, run on the ``maintenance`` queue or from the command
line: the dump itself is the store's (``store/backups.py``); this moves its bytes to and
from a workspace's bucket or a local directory.

From the API a backup covers the caller's org; ``jobyard admin backup`` can cover the
whole deployment.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jobyard.backends.factory import Resources
from jobyard.backends.storage import Storage, StorageError
from jobyard.backends.storage.file import FileStorage
from jobyard.schemas.maintenance import OperationState
from jobyard.store import Store
from jobyard.store.backups import BackupError, Report
from jobyard.store.errors import NotFound
from jobyard.workers.context import Context

logger = logging.getLogger(__name__)

TASK = "jobyard.maintenance"
LEASE_SECONDS = 300.0


def backup(store: Store, storage: Storage, key: str, org: str | None, report: Report) -> Any:
    """Write a compressed dump of ``org`` (or everything) to ``key``; returns its summary."""
    summary: dict[str, Any] = {}

    def keep(progress: Mapping[str, Any]) -> None:
        summary.update(progress)
        report(summary)

    storage.upload(key, store.backups.stream(org, keep))
    return summary


def restore(store: Store, storage: Storage, key: str, org: str | None, report: Report) -> Any:
    """Fetch ``key`` to a temporary file, validate all of it, then apply it."""
    with tempfile.TemporaryFile() as spool:
        size = storage.download(key, spool)
        report({"bytes": size, "phase": "validating"})
        summary = store.backups.restore(spool, org, report)
    return {**summary, "bytes": size}


def run(ctx: Context, op_id: str) -> str:
    """Carry out one requested backup or restore; its document records the outcome."""
    store = ctx.store
    op = store.operations.claim(op_id, LEASE_SECONDS)
    if op is None:
        return "skipped"  # done, or another worker has it
    action = op["action"]

    def report(progress: Mapping[str, Any]) -> None:
        store.operations.progress(op_id, progress, LEASE_SECONDS)

    try:
        storage = ctx.resources.storage(store.workspaces.config(op["org"], op["workspace"]))
        work = backup if action == "backup" else restore
        summary = work(store, storage, op["backup_file_name"], op["org"], report)
    except (BackupError, StorageError, NotFound) as e:
        logger.warning("operation %s (%s) failed: %s", op_id, action, e)
        store.operations.finish(op_id, OperationState.ERROR, f"{action} failed: {e}", {})
        return OperationState.ERROR.value
    except Exception:  # recorded on the operation, or it would look Running forever
        logger.exception("operation %s (%s) failed", op_id, action)
        message = f"{action} failed: internal error; the worker log has the details"
        store.operations.finish(op_id, OperationState.ERROR, message, {})
        return OperationState.ERROR.value
    store.operations.finish(op_id, OperationState.DONE, f"{action} complete", summary)
    logger.info("operation %s (%s) done: %s", op_id, action, summary)
    return OperationState.DONE.value


def command(
    store: Store,
    resources: Resources,
    action: str,
    name: str,
    *,
    workspace: str | None = None,
    org: str | None = None,
    directory: Path | None = None,
    only_org: str | None = None,
) -> dict[str, Any]:
    """Run a backup or restore now, in this process, through a workspace or a local
    directory (``jobyard admin backup|restore``). The operator's scope is the whole
    deployment unless ``only_org``."""
    if directory is not None:
        storage: Storage = FileStorage(directory)
    elif workspace and org:
        storage = resources.storage(store.workspaces.config(org, workspace))
    else:
        raise BackupError("give --dir, or --workspace with its --org")

    def report(progress: Mapping[str, Any]) -> None:
        logger.info("%s: %s", action, dict(progress))

    work = backup if action == "backup" else restore
    result: dict[str, Any] = work(store, storage, name, only_org, report)
    return result
