"""Entry point of the reference workload: ``python -m jobyard.workloads.classifier``.

Reads the ``JY_*`` environment (see README.md), validates the spec, runs one action and maps
the outcome onto the contract's exit codes: 0 success, 1 failure, 2 bad spec or environment,
75 paused by SIGTERM. Every outcome is also written to the status file, so a backend that
only tails that file still learns what happened.

Also: ``--default-spec ACTION`` and ``--json-schema ACTION`` print JSON for tooling.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jobyard.workloads import data, datasets, results, specs
from jobyard.workloads.context import (
    ENV_STATUS_FILE,
    EXIT_BAD_SPEC,
    EXIT_FAILURE,
    EXIT_PAUSED,
    EXIT_SUCCESS,
    Context,
    Paused,
    StopFlag,
    UsageError,
    context_from_env,
)
from jobyard.workloads.model import MLP, FloatArray, cross_entropy
from jobyard.workloads.problems import DatasetError
from jobyard.workloads.status import StatusWriter
from jobyard.workloads.trainer import Trainer

EVALUATION_FILE = "evaluation.json"
EXPORT_SUMMARY_FILE = "export_summary.json"
PREDICTIONS_FILE = "predictions.jsonl"
INFERENCE_SUMMARY_FILE = "inference_summary.json"
EXPORT_FORMAT = "jobyard-digits-mlp-export"


def run_train(ctx: Context, spec: dict[str, Any]) -> int:
    """Train (or resume training) the MLP; writes checkpoints and ``train_summary.json``."""
    return Trainer(ctx, spec).run()


def _load_parent(ctx: Context) -> tuple[MLP, dict[str, Any], Path]:
    path = results.parent_model(ctx.parent_results_dir, ctx.parent_checkpoint)
    model, meta = MLP.load(path)
    if model.n_features != data.N_FEATURES or model.n_classes != len(data.CLASSES):
        raise ValueError(
            f"{path}: model maps {model.n_features} features to {model.n_classes} classes; "
            f"expected {data.N_FEATURES} to {len(data.CLASSES)}"
        )
    ctx.log(f"loaded {path} (trained epochs: {meta.get('epoch', '?')})")
    return model, meta, path


def _predict_in_batches(ctx: Context, model: MLP, x: FloatArray, batch_size: int) -> FloatArray:
    """Class probabilities, batch by batch, checking for SIGTERM between batches."""
    parts = []
    for begin in range(0, len(x), batch_size):
        ctx.check_stop()
        parts.append(model.predict_proba(x[begin : begin + batch_size]))
    return np.concatenate(parts) if parts else np.zeros((0, model.n_classes))


def run_evaluate(ctx: Context, spec: dict[str, Any]) -> int:
    """Accuracy and loss of the parent's model on the validation split -> ``evaluation.json``."""
    model, meta, source = _load_parent(ctx)
    val_split: float = spec["dataset"]["val_split"]
    if meta.get("val_split") not in (None, val_split):
        ctx.log(
            f"note: the model was trained with val_split={meta['val_split']}; evaluating with "
            f"{val_split} means some validation samples were seen in training"
        )
    split = data.load_split(val_split)
    probs = _predict_in_batches(ctx, model, split.x_val, spec["evaluate"]["batch_size"])
    predicted = probs.argmax(axis=1)
    labels = split.y_val
    accuracy = float(np.mean(predicted == labels))
    loss = cross_entropy(probs, labels)
    n_classes = len(data.CLASSES)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = {str(c): float(confusion[c, c] / max(1, confusion[c].sum())) for c in data.CLASSES}
    results.write_json(
        ctx.results_dir / EVALUATION_FILE,
        {
            "accuracy": accuracy,
            "loss": loss,
            "num_samples": len(labels),
            "per_class_accuracy": per_class,
            "confusion_matrix": confusion.tolist(),
            "val_split": val_split,
            "model": str(source),
            "model_epoch": meta.get("epoch"),
        },
    )
    message = f"evaluated {len(labels)} samples: accuracy={accuracy:.4f} loss={loss:.4f}"
    ctx.log(message)
    classes = [str(c) for c in data.CLASSES]
    figure = {
        "data": [{"type": "heatmap", "z": confusion.tolist(), "x": classes, "y": classes}],
        "layout": {
            "title": "confusion matrix",
            "xaxis": {"title": "predicted"},
            "yaxis": {"title": "actual"},
        },
    }
    ctx.status.plot("confusion_matrix", "val", int(meta.get("epoch") or 0), figure)
    ctx.status.status(
        "SUCCESS",
        message,
        kpi={"accuracy": accuracy, "loss": loss},
        categorical={"per_class_accuracy": per_class},
    )
    return EXIT_SUCCESS


def portable_model(model: MLP, meta: dict[str, Any]) -> dict[str, Any]:
    """The json export: everything needed to run the model with any JSON reader and matmul."""
    return {
        "format": EXPORT_FORMAT,
        "format_version": 1,
        "architecture": {
            "type": "mlp",
            "input_size": model.n_features,
            "hidden_size": model.hidden_size,
            "output_size": model.n_classes,
            "hidden_activation": "relu",
            "output_activation": "softmax",
            "forward": "probs = softmax(relu(x @ w1 + b1) @ w2 + b2)",
        },
        "weights": {name: values.tolist() for name, values in model.params.items()},
        "classes": list(data.CLASSES),
        "normalisation": {
            "input_shape": list(data.IMAGE_SHAPE),
            "flatten": "row-major",
            "scale": data.SCALE,
            "description": "x = pixels (integers 0..16, 8x8 row-major) * scale",
        },
        "source": {
            "job_id": meta.get("job_id"),
            "epoch": meta.get("epoch"),
            "best_val_accuracy": meta.get("best_val_accuracy"),
        },
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_export(ctx: Context, spec: dict[str, Any]) -> int:
    """Write ``model.json`` or ``model.npz`` (weights only) and ``export_summary.json``."""
    model, meta, source = _load_parent(ctx)
    ctx.check_stop()
    fmt: str = spec["export"]["format"]
    portable = portable_model(model, meta)
    if fmt == "json":
        target = ctx.results_dir / "model.json"
        results.write_json(target, portable, indent=None)
    else:
        target = ctx.results_dir / "model.npz"
        npz_meta = {k: v for k, v in portable.items() if k != "weights"}
        model.save(target, npz_meta, with_optimizer=False)
    ctx.check_stop()
    sha256 = _sha256(target)
    summary = {
        "format": fmt,
        "file": target.name,
        "sha256": sha256,
        "size_bytes": target.stat().st_size,
        "source_model": str(source),
        "source_epoch": meta.get("epoch"),
    }
    results.write_json(ctx.results_dir / EXPORT_SUMMARY_FILE, summary)
    message = f"exported {fmt} model to {target.name} (sha256 {sha256[:12]}...)"
    ctx.log(message)
    ctx.status.status("SUCCESS", message, file=target.name, sha256=sha256)
    return EXIT_SUCCESS


def run_inference(ctx: Context, spec: dict[str, Any]) -> int:
    """Predict the first ``num_samples`` validation samples -> ``predictions.jsonl``.

    Uses the parent's own ``val_split`` so the predicted samples were never trained on.
    """
    model, meta, source = _load_parent(ctx)
    cfg = spec["inference"]
    val_split = float(meta.get("val_split", specs.default_spec("train")["dataset"]["val_split"]))
    split = data.load_split(val_split)
    count = min(cfg["num_samples"], len(split.y_val))
    probs = _predict_in_batches(ctx, model, split.x_val[:count], cfg["batch_size"])
    predicted = probs.argmax(axis=1)
    labels = split.y_val[:count]
    lines = [
        json.dumps(
            {
                "index": int(split.val_index[i]),
                "predicted": int(predicted[i]),
                "label": int(labels[i]),
                "confidence": float(probs[i, predicted[i]]),
            }
        )
        for i in range(count)
    ]
    results.write_text(ctx.results_dir / PREDICTIONS_FILE, "".join(line + "\n" for line in lines))
    accuracy = float(np.mean(predicted == labels)) if count else 0.0
    results.write_json(
        ctx.results_dir / INFERENCE_SUMMARY_FILE,
        {
            "num_samples": count,
            "requested_samples": cfg["num_samples"],
            "accuracy": accuracy,
            "val_split": val_split,
            "predictions": PREDICTIONS_FILE,
            "model": str(source),
            "model_epoch": meta.get("epoch"),
        },
    )
    message = f"predicted {count} samples: accuracy={accuracy:.4f}"
    ctx.log(message)
    ctx.status.status("SUCCESS", message, kpi={"accuracy": accuracy, "num_samples": count})
    return EXIT_SUCCESS


ACTION_RUNNERS: dict[str, Callable[[Context, dict[str, Any]], int]] = {
    "train": run_train,
    "evaluate": run_evaluate,
    "export": run_export,
    "inference": run_inference,
    "convert": datasets.run_convert,
    "validate": datasets.run_validate,
}


def read_spec(ctx: Context) -> dict[str, Any]:
    """Load and validate ``JY_SPECS_FILE``; raises ``UsageError`` listing every problem."""
    try:
        spec = json.loads(ctx.specs_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read spec {ctx.specs_file}: {exc}") from None
    errors = specs.validate(ctx.action, spec)
    if errors:
        raise UsageError(f"invalid {ctx.action} spec: " + "; ".join(errors), errors)
    assert isinstance(spec, dict)
    return spec


def _run(env: Mapping[str, str], status: StatusWriter, stop: StopFlag) -> int:
    try:
        ctx = context_from_env(env, status, stop)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        status.status("FAILURE", str(exc))
        return EXIT_BAD_SPEC
    ctx.status.status(
        "STARTED",
        f"{ctx.action} started (job {ctx.job_id}, run {ctx.run})",
        action=ctx.action,
        job_id=ctx.job_id,
        run=ctx.run,
    )
    ctx.log(f"jobyard reference workload: {ctx.action} job {ctx.job_id} run {ctx.run}")
    try:
        spec = read_spec(ctx)
    except UsageError as exc:
        for line in exc.errors or [str(exc)]:
            print(f"spec error: {line}", file=sys.stderr, flush=True)
        status.status("FAILURE", str(exc), errors=exc.errors)
        return EXIT_BAD_SPEC
    return _run_action(ctx, spec)


def _run_action(ctx: Context, spec: dict[str, Any]) -> int:
    """Run the action; every way it ends reaches the status file and the exit code."""
    try:
        return ACTION_RUNNERS[ctx.action](ctx, spec)
    except UsageError as exc:  # e.g. a dataset action without a dataset
        print(f"error: {exc}", file=sys.stderr, flush=True)
        ctx.status.status("FAILURE", str(exc))
        return EXIT_BAD_SPEC
    except DatasetError as exc:
        for line in [str(exc), *exc.errors]:
            print(f"dataset error: {line}", file=sys.stderr, flush=True)
        ctx.status.status("FAILURE", str(exc), errors=exc.errors)
        return EXIT_FAILURE
    except Paused:
        message = f"{ctx.action} paused by SIGTERM; it restarts from scratch when resumed"
        ctx.log(message)
        ctx.status.status("PAUSED", message)
        return EXIT_PAUSED
    except Exception as exc:  # every failure must reach the status file
        traceback.print_exc()
        message = f"{ctx.action} failed: {type(exc).__name__}: {exc}"
        print(message, file=sys.stderr, flush=True)
        ctx.status.status("FAILURE", message)
        return EXIT_FAILURE


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m jobyard.workloads.classifier",
        description="jobyard reference workload; configured by JY_* environment variables.",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--default-spec", choices=specs.ACTIONS, help="print a default spec")
    group.add_argument("--json-schema", choices=specs.ACTIONS, help="print a spec's JSON Schema")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the action named by ``JY_ACTION``; returns the exit code (0, 1, 2 or 75)."""
    args = _parse_args(argv)
    if args.default_spec:
        print(json.dumps(specs.default_spec(args.default_spec), indent=2))
        return EXIT_SUCCESS
    if args.json_schema:
        print(json.dumps(specs.json_schema(args.json_schema), indent=2))
        return EXIT_SUCCESS
    status_file = os.environ.get(ENV_STATUS_FILE, "")
    if not status_file:
        print(f"error: environment variable {ENV_STATUS_FILE} is not set", file=sys.stderr)
        return EXIT_BAD_SPEC
    status = StatusWriter(Path(status_file))
    stop = StopFlag()
    previous = stop.install()
    try:
        return _run(os.environ, status, stop)
    finally:
        StopFlag.restore(previous)


if __name__ == "__main__":
    sys.exit(main())
