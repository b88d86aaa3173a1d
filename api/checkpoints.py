"""Which of a parent job's checkpoints a derived job starts from (seed 001's
``checkpoint_choose_method``: ``latest_model``, ``best_model``, ``from_epoch_number``),
chosen when the job is created from the parent's result files, so a missing one is the
caller's 400 and the run is told exactly which file to load (``JY_PARENT_CHECKPOINT``,
``{parent_checkpoint}``)."""

from __future__ import annotations

from typing import Any

from jobyard.api.errors import BadRequest
from jobyard.api.job_files import best_of, result_names
from jobyard.backends.errors import UnsupportedOperation
from jobyard.schemas.checkpoints import epoch_models, latest_model


def _bad(message: str) -> BadRequest:
    return BadRequest(message, {"checkpoint_choose_method": [message]})


def wanted_epoch(fields: dict[str, Any]) -> int:
    """The epoch asked for: an integer, or TAO's object keyed by the parent's id."""
    raw = fields.get("checkpoint_epoch_number")
    if isinstance(raw, dict):
        parent = fields.get("parent_job_id")
        for key in (f"from_epoch_number_{parent}", str(parent)):
            if key in raw:
                return int(raw[key])
        if len(raw) == 1:
            return int(next(iter(raw.values())))
        raise BadRequest(
            f"checkpoint_epoch_number has no entry for parent {parent}",
            {"checkpoint_epoch_number": [f"give from_epoch_number_{parent}"]},
        )
    return int(raw or 0)


def choose(org: str, parent: dict[str, Any], fields: dict[str, Any]) -> str:
    """The chosen checkpoint's path, relative to the parent's results directory (from the
    listing ``:list_files`` shows)."""
    method = fields["checkpoint_choose_method"]
    try:
        paths = result_names(org, parent)
    except UnsupportedOperation as e:
        raise _bad(
            f"cannot choose a checkpoint of parent job {parent['_id']}: {e} "
            "(its results become readable once they are copied to its workspace)"
        ) from e
    if method == "from_epoch_number":
        epoch = wanted_epoch(fields)
        epochs = epoch_models(paths)
        if epoch not in epochs:
            have = ", ".join(str(e) for e in sorted(epochs)) or "none"
            message = (
                f"parent job {parent['_id']} has no checkpoint of epoch {epoch} "
                f"(epochs with a checkpoint: {have}; see :get_epoch_numbers)"
            )
            raise BadRequest(message, {"checkpoint_epoch_number": [message]})
        return epochs[epoch]
    found = best_of(org, parent, paths) if method == "best_model" else latest_model(paths)
    if found is None:
        raise _bad(
            f"parent job {parent['_id']} has no {method.replace('_', ' ')} among its results"
        )
    return found
