"""The dataset actions, run as ``kind: dataset`` jobs on the job's first training dataset
directory (``JY_TRAIN_DATASET_DIRS``).

* ``convert``: a folder of images or a CSV -> ``dataset/digits.csv.gz`` in the results
  directory, the training format, which jobyard keeps as a new dataset version
  (the catalog entry's ``output_dir``); plus ``convert_summary.json``.
* ``validate``: counts and problems -> ``validation_report.json``; exit 1 when invalid.

Both report per-class counts as ``categorical: {"num_objects": {"0": n, ...}}``, the shape
TAO's status lines use (jobyard turns it into the job's ``categorical`` list).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np

from jobyard.workloads import results, sources
from jobyard.workloads.context import (
    ENV_TRAIN_DATASET_DIRS,
    EXIT_FAILURE,
    EXIT_SUCCESS,
    Context,
    UsageError,
)
from jobyard.workloads.data import DATA_FILE
from jobyard.workloads.problems import DUPLICATES, KINDS, DatasetError
from jobyard.workloads.sources import Progress, Table

OUTPUT_DIR = "dataset"  # results sub-directory holding the converted dataset
CONVERT_SUMMARY = "convert_summary.json"
VALIDATION_REPORT = "validation_report.json"
CATEGORY_METRIC = "num_objects"  # TAO's dataset converters' name for per-class counts
PROGRESS_EVENTS = 10
LISTED_IN_FAILURE = 5
LISTED_IN_ERRORS = 20


def input_dir(ctx: Context) -> Path:
    """The dataset a dataset action reads: the first training dataset directory."""
    if not ctx.train_dataset_dirs:
        raise UsageError(f"{ctx.action} reads a dataset: {ENV_TRAIN_DATASET_DIRS} is not set")
    return ctx.train_dataset_dirs[0]


def progress(ctx: Context, noun: str) -> Progress:
    """A reader callback: stops on SIGTERM, reports about ``PROGRESS_EVENTS`` times."""

    def report(done: int, total: int) -> None:
        ctx.check_stop()
        if done == total or done % max(1, total // PROGRESS_EVENTS) == 0:
            message = f"read {done}/{total} {noun}"
            ctx.log(message)
            ctx.status.status("RUNNING", message, processed=done, total=total)

    return report


def categorical(table: Table) -> dict[str, dict[str, int]]:
    return {CATEGORY_METRIC: table.class_counts()}


def training_csv(table: Table, order: np.ndarray[Any, Any]) -> bytes:
    """The training format, gzipped reproducibly (no timestamp): same rows, same bytes."""
    rows = np.column_stack([table.pixels[order], table.labels[order]])
    text = io.StringIO()
    np.savetxt(text, rows, fmt="%d", delimiter=",")
    return gzip.compress(text.getvalue().encode("ascii"), mtime=0)


def _read(ctx: Context, input_format: str, invert: bool | str) -> Table:
    fmt, path = sources.locate(input_dir(ctx), input_format)
    if ctx.action == "convert" and fmt == "training":
        fmt = "csv"  # convert reads the training format as any CSV: header and 0..255 allowed
    ctx.log(f"reading {path} as {fmt}")
    noun = "images" if fmt == "image_folder" else "rows"
    return sources.read(fmt, path, invert, progress(ctx, noun))


def run_convert(ctx: Context, spec: dict[str, Any]) -> int:
    """Images or CSV -> ``dataset/digits.csv.gz``; fails naming the first bad rows or files."""
    cfg = spec["convert"]
    table = _read(ctx, cfg["input_format"], cfg["invert"])
    if table.problems.total:
        raise DatasetError(
            f"cannot convert {table.source}: {table.problems.summary()}; first: "
            + "; ".join(table.problems.first(LISTED_IN_FAILURE)),
            table.problems.first(LISTED_IN_ERRORS),
        )
    if not len(table.labels):
        raise DatasetError(f"cannot convert {table.source}: it holds no rows")
    if table.input_format != "image_folder":
        sources.invert_rows(table, cfg["invert"])
    order = np.arange(len(table.labels))
    if cfg["shuffle"]:
        order = np.random.default_rng(cfg["seed"]).permutation(len(table.labels))
    blob = training_csv(table, order)
    target = ctx.results_dir / OUTPUT_DIR / DATA_FILE
    results.write_bytes(target, blob)
    counts = table.class_counts()
    classes = sum(1 for n in counts.values() if n)
    sources.check_dataset(table, allow_duplicates=False)
    warnings = table.problems.first(LISTED_IN_ERRORS)
    summary = {
        "input": str(table.source),
        "input_format": table.input_format,
        "pixel_range": table.pixel_range,
        "header": table.header,
        "rows": len(table.labels),
        "classes": classes,
        "class_counts": counts,
        "inverted": table.inverted,
        "shuffled": cfg["shuffle"],
        "skipped_files": table.skipped,
        "warnings": warnings,
        "output": f"{OUTPUT_DIR}/{DATA_FILE}",
        "sha256": hashlib.sha256(blob).hexdigest(),
        "spec": spec,
    }
    results.write_json(ctx.results_dir / CONVERT_SUMMARY, summary)
    for warning in warnings:
        ctx.log(f"warning: {warning}")
    message = (
        f"converted {len(table.labels)} rows in {classes} classes from {table.source} "
        f"to {OUTPUT_DIR}/{DATA_FILE}"
    )
    ctx.log(message)
    ctx.status.status(
        "SUCCESS",
        message,
        kpi={"rows": len(table.labels), "classes": classes},
        categorical=categorical(table),
        output=f"{OUTPUT_DIR}/{DATA_FILE}",
    )
    return EXIT_SUCCESS


def _kpi(table: Table, repeated: int) -> dict[str, int]:
    counts = table.class_counts()
    kpi = {
        "rows": table.rows_read,
        "valid_rows": len(table.labels),
        "classes": sum(1 for n in counts.values() if n),
        "problems": table.problems.total,
    }
    kpi.update({kind: table.problems.counts[kind] for kind in KINDS})
    kpi[DUPLICATES] = repeated
    return kpi


def run_validate(ctx: Context, spec: dict[str, Any]) -> int:
    """Counts and problems -> ``validation_report.json``; exit 0 when valid, else 1."""
    cfg = spec["validate"]
    table = _read(ctx, cfg["input_format"], "auto")
    repeated = sources.check_dataset(table, allow_duplicates=cfg["allow_duplicates"])
    kpi = _kpi(table, repeated)
    valid = table.problems.total == 0
    report = {
        "valid": valid,
        "trainable": valid and table.input_format == "training",
        "input": str(table.source),
        "input_format": table.input_format,
        "pixel_range": table.pixel_range,
        "header": table.header,
        "kpi": kpi,
        "class_counts": table.class_counts(),
        "problem_counts": {kind: table.problems.counts[kind] for kind in KINDS},
        "problems": [
            {"kind": p.kind, "where": p.where, "message": p.message} for p in table.problems.listed
        ],
        "problems_listed": len(table.problems.listed),
        "skipped_files": table.skipped,
        "spec": spec,
    }
    results.write_json(ctx.results_dir / VALIDATION_REPORT, report)
    fields: dict[str, Any] = {"kpi": kpi, "categorical": categorical(table)}
    if valid:
        message = (
            f"{table.source} is valid: {kpi['rows']} rows, {kpi['classes']} classes "
            f"({table.input_format})"
        )
        ctx.log(message)
        ctx.status.status("SUCCESS", message, **fields)
        return EXIT_SUCCESS
    first = table.problems.first(LISTED_IN_FAILURE)
    message = f"{table.source} is invalid: {table.problems.summary()}; first: " + "; ".join(first)
    print(message, file=sys.stderr, flush=True)
    errors = table.problems.first(LISTED_IN_ERRORS)
    ctx.status.status("FAILURE", message, errors=errors, **fields)
    return EXIT_FAILURE
