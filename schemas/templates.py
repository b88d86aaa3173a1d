"""Command and path templates of catalog entries: ``{spec_file}``-style placeholders.

One small grammar for every template an entry holds (its commands, its ``spec_fields``, its
``status_file``): Python's format-string fields, names only (no attribute access, index,
conversion or format spec), ``{{`` and ``}}`` for literal braces. Checked once when an
entry is saved, so an unknown placeholder is the admin's 400, never a run that fails.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping

# name -> what it means, as README.md's catalog section lists them
PLACEHOLDERS: dict[str, str] = {
    "python": "the backend's Python interpreter",
    "action": "the job's action",
    "job_id": "the job's id",
    "run": "the run number (1, then one more per resume)",
    "network_arch": "the job's network_arch",
    "spec_file": "this run's spec file",
    "results_dir": "the job's results directory, shared by its runs",
    "run_dir": "this run's own directory",
    "status_file": "this run's jobyard-protocol status file",
    "parent_results_dir": "the parent job's results directory",
    "parent_checkpoint": "the parent checkpoint the job chose (checkpoint_choose_method)",
    "pretrained_checkpoint": "the published model's checkpoint a train job starts from",
    "train_dataset_dir": "the first training dataset directory",
    "train_dataset_dirs": "every training dataset directory, os.pathsep-joined",
    "eval_dataset_dir": "the evaluation dataset directory",
    "inference_dataset_dir": "the inference dataset directory",
    "calibration_dataset_dir": "the calibration dataset directory",
    "port": "serve: the port the model server listens on",
    "host": "serve: the address the model server binds",
    "num_gpus": "GPUs the job asked for",
    "gpu_type": "the GPU type the job asked for",
}


class TemplateError(ValueError):
    """A template that cannot be rendered: bad syntax, unknown or missing placeholder."""


def names(template: str) -> list[str]:
    """The placeholders ``template`` uses, in order; TemplateError for bad syntax."""
    found = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise TemplateError(f"{template!r}: {e} (write {{{{ and }}}} for literal braces)") from e
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            shown = (
                "{"
                + field
                + ("!" + conversion if conversion else "")
                + (":" + spec if spec else "")
                + "}"
            )
            raise TemplateError(f"{template!r}: {shown} is not a plain placeholder name")
        found.append(field)
    return found


def unknown(templates: Iterable[str]) -> list[str]:
    """Placeholders used in ``templates`` that jobyard does not know, sorted."""
    return sorted({n for t in templates for n in names(t) if n not in PLACEHOLDERS})


def render(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each placeholder replaced; TemplateError naming the first one the
    run has no value for (``{parent_results_dir}`` in a job without a parent)."""
    missing = [n for n in names(template) if n not in values]
    if missing:
        raise TemplateError(
            f"{template!r} needs {{{missing[0]}}} ({PLACEHOLDERS.get(missing[0], 'unknown')}), "
            "which this job does not have"
        )
    return template.format_map(dict(values))
