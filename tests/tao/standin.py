#!/usr/bin/env python3
"""A stand-in for a TAO Toolkit container, run as TAO's CLI is:

    standin.py <network> <action> -e <spec.yaml> [key=value ...]

Networks: ``rtdetr`` and ``dino`` (train, evaluate, inference, export, gen_trt_engine) and
``dataset`` (convert: a COCO folder split into train and val). Stdlib and PyYAML only, so
Debian's python3 with python3-yaml runs it. What it follows, from TAO's sources
(NVIDIA/tao_pytorch_backend 6.25.10 unless said otherwise):

* CLI (``core/entrypoint.py``, ``core/hydra/hydra_runner.py``): ``-e`` names the spec, the
  other arguments are Hydra overrides (dotted keys set into the spec). A missing or absent
  spec prints ``ERROR: ...`` and exits 1; an exception prints Hydra's "Error executing job
  with overrides" and a traceback to stdout (the CLI merges stderr) and exits 1.
* Results (``core/utilities.py`` ``update_results_dir``): ``<action>.results_dir`` if set,
  else ``<results_dir>/<action>``; ``experiment.yaml`` and ``status.json`` go there.
* ``status.json`` (``core/decorators/workflow.py`` ``monitor_status``,
  ``core/loggers/api_logging.py``): opened with ``append=True`` at its realpath; one
  ``json.dumps`` per line, the caller's keys then ``date`` ("M/D/YYYY"), ``time``
  ("H:M:S", unpadded, local clock), ``status``, ``verbosity``, ``message`` and whatever
  ``categorical``/``graphical``/``kpi`` the logger holds (they stay set, so later lines
  repeat them). First line STARTED "Starting <name> <action>."; last line on success
  RUNNING "<Action> finished successfully." -- the toolkit never writes SUCCESS: that line
  ("<action> action completed successfully for <network>") comes from tao-core's
  ``container_handler._cleanup``, the FTMS wrapper, which jobyard does not run. FAILURE
  "Configuration error: ...", "Feature not implemented: ...", "Parameter validation
  error: ...", "File system error: ..." for those exception kinds, then exit 1; any other
  exception (an AssertionError) writes no line.
* Train (``core/initialize_experiments.py``, ``core/callbacks/loggers.py``,
  ``cv/rtdetr/model/pl_rtdetr_model.py``): resumes from ``train.resume_training_checkpoint_path``
  or else from ``<results dir>/*_latest.pth`` (RUNNING "Resuming training from checkpoint:
  <realpath>"); STARTED "Starting Training Loop."; per epoch "Eval metrics generated."
  (kpi val_mAP and val_mAP50 as strings, val_loss), the epoch line (epoch 0-based, step,
  max_epoch = num_epochs - 1, max_step, time_per_epoch, time_per_step, eta as
  str(timedelta), message "Training loop in progress"), "Train metrics generated." (kpi
  train_loss); RUNNING "Training loop complete.". rtdetr writes no graphical. Checkpoints
  every ``train.checkpoint_interval`` epochs: rtdetr ``model_epoch_{epoch:03d}.pth``, dino
  (TAOLightningModule) ``model_epoch_{epoch:03d}_step_{step:05d}.pth``, and a relative
  symlink ``<rtdetr|dino>_model_latest.pth`` to the newest. ``train.standin_epoch_seconds``
  (default 0.2) is this stand-in's own knob.
* SIGTERM during train (pytorch-lightning 2.5.0.post0, pinned in
  ``docker/requirements-pip-pytorch.txt``; ``trainer/connectors/signal_connector.py``,
  ``loops/training_epoch_loop.py``, ``loops/fit_loop.py``): logged, the current batch
  finishes (a last batch finishes its epoch: validation, epoch line, checkpoint), then
  ``SIGTERMException`` -- a ``SystemExit()``, so exit code 0, and ``monitor_status``
  catches it not, so no status line. dino's ``TAOExceptionCheckpoint``
  (``core/callbacks/model_checkpoint.py``) first saves
  ``model_epoch_{current_epoch:03d}_step_{global_step:05d}.pth`` and relinks the latest
  checkpoint to it; rtdetr overrides ``configure_callbacks`` without it and saves nothing.
  Other actions keep Python's default: SIGTERM kills them.
* Evaluate/inference (``cv/rtdetr/scripts/{evaluate,inference}.py``): RUNNING "Loading
  checkpoint: <path>"; a missing file is "File system error: [Errno 2] No such file or
  directory: '<path>'"; evaluate writes kpi test_mAP and test_mAP50 ("Test metrics
  generated."); inference writes ``labels/<image>.txt`` (KITTI lines) and
  ``images_annotated/<image>`` (``cv/deformable_detr/model/post_process.py``).
* Export (``cv/rtdetr/scripts/export.py``) refuses to overwrite ``export.onnx_file``
  (an assertion: no status line); this stand-in defaults it to ``<results dir>/model.onnx``.
  gen_trt_engine (NVIDIA/tao_deploy ``cv/rtdetr/scripts/gen_trt_engine.py``,
  ``cv/common/decorators.py``): "Starting rtdetr gen_trt_engine.", "Gen_trt_engine
  finished successfully."; ``gen_trt_engine.trt_engine`` defaults to
  ``<results dir>/model.engine``.
* Dataset convert (as NVIDIA/tao_tensorflow2_backend
  ``cv/efficientdet/scripts/dataset_convert.py``): categorical
  ``{"num_objects": {category: count}}`` on the last line; reads
  ``data.input_dir`` (``annotations.json`` + ``images/``), writes ``train/`` and ``val/``
  (each ``annotations.json`` + ``images/``) and ``manifest.json``; COCO JSON whatever
  ``output_format`` says.

The encryption key is never printed: the configuration shown, the overrides echoed and
``experiment.yaml`` carry it masked (TAO's own ``experiment.yaml`` holds it in clear).
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import random
import shutil
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import yaml

STEPS_PER_EPOCH = 5
MISSING = "???"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass(frozen=True)
class Network:
    title: str  # monitor_status(name=...)
    checkpoint_name: str  # the latest checkpoint is <checkpoint_name>_latest.pth
    checkpoint_file: str  # ModelCheckpoint's filename, as Lightning formats it
    exception_checkpoint: bool  # TAOExceptionCheckpoint among its callbacks


NETWORKS = {
    "rtdetr": Network("RT-DETR", "rtdetr_model", "model_epoch_{epoch:03d}", False),
    "dino": Network("DINO", "dino_model", "model_epoch_{epoch:03d}_step_{step:05d}", True),
}
ACTIONS = {
    **{name: ("train", "evaluate", "inference", "export", "gen_trt_engine") for name in NETWORKS},
    "dataset": ("convert",),
}


class ConfigurationError(Exception):
    """What OmegaConf raises for a missing mandatory value."""


class SigtermExit(SystemExit):
    """Lightning's SIGTERMException: a SystemExit without a code, so exit status 0."""


FAILURES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
    (ConfigurationError, "Configuration error"),
    (NotImplementedError, "Feature not implemented"),
    ((ValueError, TypeError), "Parameter validation error"),
    (OSError, "File system error"),
)


def log(message: str, level: str = "INFO") -> None:
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    print(f"{stamp} - [TAO Toolkit] - {level} - {message}", flush=True)


class StatusLogger:
    """api_logging.StatusLogger: one JSON object per line, appended and flushed."""

    def __init__(self, path: str) -> None:
        path = os.path.realpath(path)
        if os.path.exists(path):
            log(f"Log file already exists at {path}", "WARNING")
        self.file = open(path, "a")  # open for the life of the process, as TAO's
        self.categorical: dict[str, Any] = {}
        self.graphical: dict[str, Any] = {}
        self.kpi: dict[str, Any] = {}

    def write(
        self,
        message: str,
        status: str = "RUNNING",
        verbosity: str = "INFO",
        data: dict[str, Any] | None = None,
    ) -> None:
        line = dict(data or {})
        now = dt.datetime.now()
        line["date"] = f"{now.month}/{now.day}/{now.year}"
        line["time"] = f"{now.hour}:{now.minute}:{now.second}"
        line.update(status=status, verbosity=verbosity, message=message)
        for key in ("categorical", "graphical", "kpi"):
            if getattr(self, key):
                line[key] = getattr(self, key)
        self.file.write(json.dumps(line) + "\n")
        self.file.flush()


@dataclass
class Run:
    network: str
    action: str
    cfg: dict[str, Any]
    out: str = ""  # this action's results directory
    status: StatusLogger | None = None
    secrets: set[str] = field(default_factory=set)

    @property
    def s(self) -> StatusLogger:
        assert self.status is not None
        return self.status


# --- the spec --------------------------------------------------------------------------


def lookup(cfg: dict[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def assign(cfg: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = cfg
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[last] = value


def required(cfg: dict[str, Any], dotted: str) -> Any:
    value = lookup(cfg, dotted)
    if value is None or value == MISSING or (isinstance(value, list) and MISSING in value):
        raise ConfigurationError(f"Missing mandatory value: {dotted}")
    return value


def override_value(text: str) -> Any:
    """A Hydra override's value: numbers, true/false/null, lists and dicts as YAML reads
    them, anything else as the string."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        return text


def load_spec(path: str, overrides: list[str]) -> tuple[dict[str, Any], set[str]]:
    with open(path) as fh:
        cfg = yaml.safe_load(fh) or {}
    if not isinstance(cfg, dict):
        raise ConfigurationError(f"{path}: the spec must be a mapping")
    secrets = set()
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.lstrip("+")
        if not sep or not key:
            raise ConfigurationError(f"Error parsing override '{item}': expected key=value")
        assign(cfg, key, override_value(text))
        if key == "encryption_key" and text:
            secrets.add(text)
    if cfg.get("encryption_key") not in (None, "", MISSING):
        secrets.add(str(cfg["encryption_key"]))
    return cfg, secrets


def mask(text: str, secrets: set[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "*****")
    return text


def update_results_dir(cfg: dict[str, Any], task: str) -> str:
    if lookup(cfg, f"{task}.results_dir"):
        cfg["results_dir"] = lookup(cfg, f"{task}.results_dir")
    elif cfg.get("results_dir"):
        cfg["results_dir"] = os.path.join(cfg["results_dir"], task)
        assign(cfg, f"{task}.results_dir", cfg["results_dir"])
    else:  # sic: TAO's message is not an f-string
        raise ValueError(
            "You need to set at least one of following fields: results_dir, {mode}.results_dir"
        )
    print(f"{task.capitalize()} results will be saved at: {cfg['results_dir']}", flush=True)
    return str(cfg["results_dir"])


# --- checkpoints -------------------------------------------------------------------------


def save_checkpoint(run: Run, path: str, completed: int, step: int) -> None:
    """Some bytes with a JSON header line: the epochs completed and the global step."""
    header = {"tao_model": run.network, "epoch": completed, "global_step": step}
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(json.dumps(header).encode() + b"\n" + bytes(range(256)) * 16)
    os.replace(tmp, path)
    latest = os.path.join(run.out, f"{NETWORKS[run.network].checkpoint_name}_latest.pth")
    if os.path.islink(latest) or os.path.exists(latest):
        os.remove(latest)
    os.symlink(os.path.relpath(path, run.out), latest)
    log(f"Saved checkpoint {path}")


def read_checkpoint(path: str) -> dict[str, Any]:
    with open(path, "rb") as fh:
        first = fh.readline()
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    if not isinstance(header, dict) or "epoch" not in header:
        raise ValueError(f"{path} is not a checkpoint this stand-in wrote")
    return header


def latest_checkpoint(folder: str) -> str | None:
    found = glob.glob(os.path.join(folder, "*_latest.pth"))
    return os.path.realpath(found[0]) if found else None


def model_path(run: Run, key: str, what: str) -> dict[str, Any]:
    """initialize_{evaluation,inference}_experiment, then the model's load."""
    path = str(required(run.cfg, key))
    run.s.write(f"Loading checkpoint: {path}")
    if path.endswith(".engine"):
        raise NotImplementedError(
            f"TensorRT {what} is supported through tao-deploy. "
            f"Please use tao-deploy to generate TensorRT enigne and run {what}."
        )
    if not path.endswith(".pth"):
        raise NotImplementedError("Model path format is only supported for .tlt or .pth")
    return read_checkpoint(path)


# --- the actions ---------------------------------------------------------------------------


def curve(epoch: int) -> dict[str, float]:
    """The deterministic learning curve of epoch ``epoch`` (0-based)."""
    train_loss = 0.3 + 1.7 * 0.8**epoch
    val_map = 0.55 * (1 - 0.8 ** (epoch + 1))
    return {
        "train_loss": round(train_loss, 6),
        "val_loss": round(train_loss + 0.05, 6),
        "val_mAP": round(val_map, 6),
        "val_mAP50": round(min(0.95, val_map * 1.45), 6),
    }


class Sigterm:
    """Lightning's signal connector: the handler only takes note."""

    def __init__(self) -> None:
        self.received = False
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = True


def train(run: Run) -> None:
    cfg, net = run.cfg, NETWORKS[run.network]
    epochs = int(lookup(cfg, "train.num_epochs", 10))
    checkpoint_interval = int(lookup(cfg, "train.checkpoint_interval", 1))
    validation_interval = int(lookup(cfg, "train.validation_interval", 1))
    assert checkpoint_interval <= epochs, (
        f"Checkpoint interval {checkpoint_interval} > Number of epochs {epochs}."
        f"Please set experiment_config.train.checkpoint_interval <= {epochs}"
    )
    assert validation_interval <= epochs, (
        f"Validation interval {validation_interval} > Number of epochs {epochs}."
        f"Please set experiment_config.train.validation_interval <= {epochs}"
    )
    step_seconds = float(lookup(cfg, "train.standin_epoch_seconds", 0.2)) / STEPS_PER_EPOCH
    resume = lookup(cfg, "train.resume_training_checkpoint_path") or latest_checkpoint(run.out)
    completed, step = 0, 0
    if resume:
        if not str(resume).endswith((".tlt", ".pth")):
            raise ValueError(
                "Resume checkpoint has an invalid file format; it must be either a .tlt or a .pth"
            )
        log(f"Setting resume checkpoint to {resume}")
        run.s.write(f"Resuming training from checkpoint: {resume}")
    stop = Sigterm()
    if resume:
        header = read_checkpoint(str(resume))
        completed, step = int(header["epoch"]), int(header["global_step"])
    if completed >= epochs:
        return  # Lightning skips a fit loop that is already done
    run.s.write("Starting Training Loop.", status="STARTED")
    per_step, steps_timed = 0.0, 0
    for epoch in range(completed, epochs):
        started = time.monotonic()
        for batch in range(step - epoch * STEPS_PER_EPOCH, STEPS_PER_EPOCH):
            began = time.monotonic()
            time.sleep(step_seconds)
            step += 1
            per_step = (time.monotonic() - began + steps_timed * per_step) / (steps_timed + 1)
            steps_timed += 1
            if stop.received and batch < STEPS_PER_EPOCH - 1:
                interrupted(run, epoch, step)
        metrics = curve(epoch)
        if (epoch + 1) % validation_interval == 0:
            run.s.kpi = {
                "val_mAP": str(metrics["val_mAP"]),
                "val_mAP50": str(metrics["val_mAP50"]),
                "val_loss": metrics["val_loss"],
            }
            log(f"Validation mAP : {metrics['val_mAP']}")
            run.s.write("Eval metrics generated.")
        epoch_seconds = time.monotonic() - started
        progress = {
            "epoch": epoch,
            "step": step,
            "max_epoch": epochs - 1,
            "max_step": epochs * STEPS_PER_EPOCH,
            "time_per_epoch": str(dt.timedelta(seconds=epoch_seconds)),
            "time_per_step": str(dt.timedelta(seconds=per_step)),
            "eta": str(dt.timedelta(seconds=(epochs - 1 - epoch) * epoch_seconds)),
        }
        run.s.write("Training loop in progress", data=progress)
        run.s.kpi = {"train_loss": metrics["train_loss"]}
        run.s.write("Train metrics generated.")
        print(f"Epoch {epoch}: train_loss={metrics['train_loss']}", flush=True)
        if (epoch + 1) % checkpoint_interval == 0:
            name = net.checkpoint_file.format(epoch=epoch, step=step) + ".pth"
            save_checkpoint(run, os.path.join(run.out, name), epoch + 1, step)
        if stop.received:
            interrupted(run, epoch + 1, step)
    run.s.write("Training loop complete.")


def interrupted(run: Run, current_epoch: int, step: int) -> None:
    """SIGTERMException through Lightning's on_exception callbacks."""
    log("[rank: 0] Received SIGTERM: 15")
    if NETWORKS[run.network].exception_checkpoint:
        name = f"model_epoch_{current_epoch:03d}_step_{step:05d}.pth"
        save_checkpoint(run, os.path.join(run.out, name), current_epoch, step)
    raise SigtermExit()


def evaluate(run: Run) -> None:
    header = model_path(run, "evaluate.checkpoint", "evaluation")
    metrics = curve(max(int(header["epoch"]) - 1, 0))
    run.s.kpi = {"test_mAP": str(metrics["val_mAP"]), "test_mAP50": str(metrics["val_mAP50"])}
    log(f"Test mAP : {metrics['val_mAP']}")
    run.s.write("Test metrics generated.")


def inference(run: Run) -> None:
    model_path(run, "inference.checkpoint", "inference")
    dirs = required(run.cfg, "dataset.infer_data_sources.image_dir")
    threshold = float(lookup(run.cfg, "inference.conf_threshold", 0.5))
    label = "object"
    classmap = lookup(run.cfg, "dataset.infer_data_sources.classmap")
    if isinstance(classmap, str) and os.path.isfile(classmap):
        with open(classmap) as fh:
            label = next((line.strip() for line in fh if line.strip()), label)
    for folder in [dirs] if isinstance(dirs, str) else list(dirs):
        for name in sorted(os.listdir(folder)):
            if not name.lower().endswith(IMAGE_SUFFIXES):
                continue
            stem = os.path.splitext(name)[0]
            for sub in ("labels", "images_annotated"):
                os.makedirs(os.path.join(run.out, sub), exist_ok=True)
            with open(os.path.join(run.out, "labels", f"{stem}.txt"), "w") as fh:
                score = 0.9
                if score >= threshold:
                    fh.write(
                        f"{label} 0.00 0 0.00 10.000 20.000 110.000 220.000"
                        f" 0.00 0.00 0.00 0.00 0.00 0.00 0.00 {score:.3f}\n"
                    )
            shutil.copyfile(
                os.path.join(folder, name), os.path.join(run.out, "images_annotated", name)
            )
    log(f"Inference results saved at {run.out}")


def export(run: Run) -> None:
    checkpoint = str(required(run.cfg, "export.checkpoint"))
    onnx = lookup(run.cfg, "export.onnx_file")
    onnx = os.path.join(run.out, "model.onnx") if onnx in (None, "", MISSING) else str(onnx)
    assert not os.path.exists(onnx), f"Default onnx file {onnx} already exists"
    os.makedirs(os.path.dirname(os.path.realpath(onnx)), exist_ok=True)
    header = read_checkpoint(checkpoint)
    model = {"format": "onnx (stand-in)", "checkpoint": checkpoint, "epoch": header["epoch"]}
    model["outputs"] = ["pred_logits", "pred_boxes"]
    with open(onnx, "wb") as fh:
        fh.write(json.dumps(model).encode() + b"\n" + bytes(range(256)) * 8)
    log(f"Exported {checkpoint} to {onnx}")


def gen_trt_engine(run: Run) -> None:
    onnx = str(required(run.cfg, "gen_trt_engine.onnx_file"))
    if not onnx.endswith(("etlt", "onnx", "uff")):
        raise NotImplementedError(
            "TAO Deploy gen_trt_engine action accepts either .onnx, .uff or .etlt file extension"
        )
    engine = lookup(run.cfg, "gen_trt_engine.trt_engine")
    engine = os.path.join(run.out, "model.engine") if engine in (None, "", MISSING) else engine
    with open(onnx, "rb") as fh:
        model = fh.read()
    os.makedirs(os.path.dirname(os.path.realpath(engine)), exist_ok=True)
    with open(engine, "wb") as fh:
        fh.write(b"TRT stand-in engine\n" + model)
    print("Engine build finished successfully.", flush=True)


def convert(run: Run) -> None:
    source = str(required(run.cfg, "data.input_dir"))
    with open(os.path.join(source, "annotations.json")) as fh:
        coco = json.load(fh)
    train_split = float(run.cfg.get("train_split", 0.8))
    val_split = float(run.cfg.get("val_split", 0.2))
    if min(train_split, val_split) < 0 or train_split + val_split > 1 + 1e-9:
        raise ValueError(
            f"train_split and val_split must add up to at most 1: {train_split}, {val_split}"
        )
    images = list(coco.get("images", []))
    if run.cfg.get("shuffle", True):
        random.Random(int(run.cfg.get("seed", 42))).shuffle(images)
    n_train = round(len(images) * train_split)
    n_val = min(len(images) - n_train, round(len(images) * val_split))
    splits = {"train": images[:n_train], "val": images[n_train : n_train + n_val]}
    names = {c["id"]: c["name"] for c in coco.get("categories", [])}
    manifest: dict[str, Any] = {
        "source": source,
        "output_format": run.cfg.get("output_format", "coco"),
        "written_format": "coco",
        "splits": {},
    }
    for split, chosen in splits.items():
        ids = {image["id"] for image in chosen}
        annotations = [a for a in coco.get("annotations", []) if a.get("image_id") in ids]
        os.makedirs(os.path.join(run.out, split, "images"), exist_ok=True)
        for image in chosen:
            shutil.copyfile(
                os.path.join(source, "images", image["file_name"]),
                os.path.join(run.out, split, "images", image["file_name"]),
            )
        subset = {**coco, "images": chosen, "annotations": annotations}
        with open(os.path.join(run.out, split, "annotations.json"), "w") as fh:
            json.dump(subset, fh)
        manifest["splits"][split] = {"images": len(chosen), "annotations": len(annotations)}
        log(f"Wrote {split}: {len(chosen)} images, {len(annotations)} annotations")
    with open(os.path.join(run.out, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)
    counts: dict[str, int] = {}
    for annotation in coco.get("annotations", []):
        name = names.get(annotation.get("category_id"), str(annotation.get("category_id")))
        counts[name] = counts.get(name, 0) + 1
    run.s.categorical = {"num_objects": counts}


RUNNERS = {
    "train": train,
    "evaluate": evaluate,
    "inference": inference,
    "export": export,
    "gen_trt_engine": gen_trt_engine,
    "convert": convert,
}


# --- monitor_status and the CLI ------------------------------------------------------------


def monitor_status(run: Run) -> None:
    run.out = update_results_dir(run.cfg, run.action)
    os.makedirs(run.out, exist_ok=True)
    shown = dict(run.cfg)
    if shown.get("encryption_key") not in (None, ""):
        shown["encryption_key"] = "*" * random.randint(3, 10)
    with open(os.path.join(run.out, "experiment.yaml"), "w") as fh:
        yaml.safe_dump(shown, fh, sort_keys=False)
    log("Experiment configuration:\n" + yaml.safe_dump(shown, sort_keys=False))
    run.status = StatusLogger(os.path.join(run.out, "status.json"))
    name = NETWORKS[run.network].title if run.network in NETWORKS else run.network
    if run.action == "gen_trt_engine":
        name = run.network  # tao_deploy's monitor_status(name='rtdetr', ...)
    try:
        run.s.write(f"Starting {name} {run.action}.", status="STARTED")
        RUNNERS[run.action](run)
        run.s.write(f"{run.action.capitalize()} finished successfully.")
    except KeyboardInterrupt:
        message = f"User/System interruption: {run.action.capitalize()} was interrupted"
        run.s.write(message, status="FAILURE")
    except Exception as e:
        for kinds, prefix in FAILURES:
            if isinstance(e, kinds):
                run.s.write(mask(f"{prefix}: {e}", run.secrets), status="FAILURE")
                break
        raise


def main(argv: list[str]) -> int:
    network = argv[0] if argv else ""
    if network not in ACTIONS:
        print(f"ERROR: unknown network {network!r}; one of {', '.join(ACTIONS)}", flush=True)
        return 2
    parser = argparse.ArgumentParser(network, description=f"TAO stand-in for {network}")
    parser.add_argument("subtask", choices=ACTIONS[network])
    parser.add_argument("-e", "--experiment_spec_file", default=None)
    args, overrides = parser.parse_known_args(argv[1:])
    spec = args.experiment_spec_file
    if spec is None:
        print(
            f"ERROR: The subtask `{args.subtask}` requires the following argument: "
            "-e/--experiment_spec_file",
            flush=True,
        )
        return 1
    if not os.path.exists(spec):
        print(f"ERROR: The indicated experiment spec file `{spec}` doesn't exist!", flush=True)
        return 1
    secrets: set[str] = {o.split("=", 1)[1] for o in overrides if o.startswith("encryption_key=")}
    try:
        cfg, secrets = load_spec(spec, overrides)
        monitor_status(Run(network, args.subtask, cfg, secrets=secrets))
    except Exception:
        shown = mask(str(overrides), secrets)
        print(f"Error executing job with overrides: {shown}", flush=True)
        print(mask(traceback.format_exc(), secrets), end="", flush=True)
        print("\nSet the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
