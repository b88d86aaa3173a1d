"""The train action: epochs of mini-batch SGD with checkpoints, resume, pause and early stop.

Pausing is exact: the trainer keeps a copy of the model as it was at the last epoch boundary,
and on SIGTERM it checkpoints *that* copy, labelled with the number of fully completed
epochs. Each epoch shuffles with a generator seeded by ``(seed, epoch)``, so a run that was
paused and resumed produces the same model as one that never stopped.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from jobyard.workloads import data, results
from jobyard.workloads.context import EXIT_PAUSED, EXIT_SUCCESS, Context
from jobyard.workloads.model import MLP

CHECKPOINT_FORMAT = "jobyard-digits-mlp"
CHECKPOINT_FORMAT_VERSION = 1
PACE_SLICE_SECONDS = 0.05


class Diverged(RuntimeError):
    """The loss became NaN or infinite: retrying will not help, the spec must change."""


class Trainer:
    """State of one train run; ``run()`` returns the process exit code."""

    def __init__(self, ctx: Context, spec: dict[str, Any]) -> None:
        self.ctx = ctx
        self.spec = spec
        cfg = spec["train"]
        self.num_epochs: int = cfg["num_epochs"]
        self.early_stop_epoch: int | None = cfg["early_stop_epoch"]
        self.stop_at = (
            self.num_epochs
            if self.early_stop_epoch is None
            else min(self.num_epochs, self.early_stop_epoch)
        )
        self.batch_size: int = cfg["batch_size"]
        self.learning_rate: float = cfg["learning_rate"]
        self.momentum: float = cfg["momentum"]
        self.interval: int = cfg["checkpoint_interval"]
        self.seed: int = cfg["seed"]
        self.min_epoch_seconds: float = cfg["min_epoch_seconds"]
        self.retain: bool = cfg["retain_checkpoints_for_resume"]
        self.hidden_size: int = spec["model"]["hidden_size"]
        self.val_split: float = spec["dataset"]["val_split"]
        self.split = data.load_split(self.val_split)
        self.ctx.log(f"data: {data.origin()}")
        self.history: list[dict[str, float]] = []
        self.best_val_accuracy = -1.0
        self.best_epoch = 0
        self.started = time.monotonic()
        self.model = self._resume_or_init()
        # The model as of the last completed epoch: what a pause checkpoints.
        self.boundary = self.model.copy()

    @property
    def completed(self) -> int:
        return len(self.history)

    def _resume_or_init(self) -> MLP:
        """The job's own latest checkpoint (a resume); else the checkpoint jobyard chose
        from a parent train job, continued with this job's hyperparameters (how an AutoML
        ``pbt`` trial exploits a better one); else a fresh model."""
        latest = self.ctx.results_dir / results.LATEST
        source = "own"
        if not latest.is_file() and self.ctx.parent_checkpoint is not None:
            latest, source = self.ctx.parent_checkpoint, "parent"
        if not latest.is_file():
            return self._pretrained_or_fresh()
        model, meta = MLP.load(latest)
        if model.hidden_size != self.hidden_size:
            raise ValueError(
                f"cannot resume: {results.LATEST} has hidden_size {model.hidden_size} but the "
                f"spec asks for {self.hidden_size}; use a new job to change the architecture"
            )
        if meta.get("val_split") != self.val_split:
            raise ValueError(
                f"cannot resume: {results.LATEST} was trained with val_split "
                f"{meta.get('val_split')} but the spec says {self.val_split}"
            )
        self.history = list(meta.get("history", []))
        if len(self.history) != meta.get("epoch"):
            raise ValueError(f"{results.LATEST} is inconsistent: epoch != len(history)")
        self.best_val_accuracy = float(meta.get("best_val_accuracy", -1.0))
        self.best_epoch = int(meta.get("best_epoch", 0))
        k = self.completed
        message = f"resuming from epoch {k}"
        if source == "parent":
            message = f"continuing from epoch {k} of the parent's checkpoint {latest}"
        if k < self.stop_at:
            message += f"; continuing with epoch {k + 1}/{self.num_epochs}"
        self.ctx.log(f"{message} ({latest.name}, run {self.ctx.run})")
        self.ctx.status.status("RUNNING", message, resumed_from_epoch=k, max_epoch=self.num_epochs)
        return model

    def _pretrained_or_fresh(self) -> MLP:
        """A published model's weights (``JY_PRETRAINED_CHECKPOINT``) with fresh momentum
        and epochs counted from 0: transfer learning, not a resume. Else a fresh model."""
        path = self.ctx.pretrained_checkpoint
        if path is None:
            return MLP.init(data.N_FEATURES, self.hidden_size, len(data.CLASSES), self.seed)
        if not path.is_file():
            raise ValueError(f"the pretrained checkpoint {path} does not exist")
        model, meta = MLP.load(path)
        if model.hidden_size != self.hidden_size:
            raise ValueError(
                f"cannot start from {path.name}: the pretrained model has hidden_size "
                f"{model.hidden_size} but the spec asks for {self.hidden_size}"
            )
        if model.n_features != data.N_FEATURES or model.n_classes != len(data.CLASSES):
            raise ValueError(f"cannot start from {path.name}: it is not a digits model")
        message = (
            f"starting from the pretrained weights of {path.name} (trained "
            f"{meta.get('epoch', '?')} epochs by job {meta.get('job_id', '?')})"
        )
        self.ctx.log(message)
        self.ctx.status.status("RUNNING", message, pretrained=str(path))
        return MLP(model.params, {})

    def metadata(self, epoch: int) -> dict[str, Any]:
        """What a checkpoint records besides weights: enough to resume and to describe it."""
        return {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "epoch": epoch,
            "max_epoch": self.num_epochs,
            "n_features": data.N_FEATURES,
            "hidden_size": self.hidden_size,
            "classes": list(data.CLASSES),
            "scale": data.SCALE,
            "val_split": self.val_split,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "momentum": self.momentum,
            "job_id": self.ctx.job_id,
            "run": self.ctx.run,
            "best_val_accuracy": self.best_val_accuracy,
            "best_epoch": self.best_epoch,
            "history": self.history[:epoch],
        }

    def save_checkpoint(self, epoch: int, model: MLP) -> str:
        """``checkpoints/epoch_NNN.npz`` + ``model_latest.npz``; prunes old epoch files."""
        relative = results.epoch_checkpoint(epoch)
        meta = self.metadata(epoch)
        model.save(self.ctx.results_dir / relative, meta)
        model.save(self.ctx.results_dir / results.LATEST, meta)
        if not self.retain:
            results.prune_epoch_checkpoints(self.ctx.results_dir, keep=relative)
        return relative

    def run(self) -> int:
        if self.completed >= self.stop_at:
            return self.finish()
        x, y = self.split.x_train, self.split.y_train
        for epoch in range(self.completed + 1, self.stop_at + 1):
            epoch_started = time.monotonic()
            order = np.random.default_rng([self.seed, epoch]).permutation(len(y))
            for begin in range(0, len(y), self.batch_size):
                if self.ctx.stop.requested:
                    return self.pause()
                batch = order[begin : begin + self.batch_size]
                _, grads = self.model.loss_and_grads(x[batch], y[batch])
                self.model.sgd_step(grads, self.learning_rate, self.momentum)
            self.end_epoch(epoch, epoch_started)
            if epoch < self.stop_at:
                self.pace(epoch_started)
        return self.finish()

    def end_epoch(self, epoch: int, epoch_started: float) -> None:
        """Measure, checkpoint, report: everything that happens once per completed epoch."""
        train_loss, train_acc = self.model.evaluate(self.split.x_train, self.split.y_train)
        val_loss, val_acc = self.model.evaluate(self.split.x_val, self.split.y_val)
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise Diverged(
                f"loss became {train_loss} at epoch {epoch}; lower train.learning_rate "
                f"(now {self.learning_rate})"
            )
        metrics = {"loss": train_loss, "accuracy": train_acc}
        metrics.update(val_loss=val_loss, val_accuracy=val_acc)
        self.history.append(metrics)
        if val_acc > self.best_val_accuracy:
            self.best_val_accuracy, self.best_epoch = val_acc, epoch
            self.model.save(self.ctx.results_dir / results.BEST, self.metadata(epoch))
        checkpoint = None
        if epoch % self.interval == 0 or epoch == self.stop_at:
            checkpoint = self.save_checkpoint(epoch, self.model)
        self.boundary = self.model.copy()

        # What an epoch costs in wall time, pacing included: the basis of the ETA.
        time_per_epoch = max(time.monotonic() - epoch_started, self.min_epoch_seconds)
        for metric, variant, value in (
            ("loss", "train", train_loss),
            ("accuracy", "train", train_acc),
            ("loss", "val", val_loss),
            ("accuracy", "val", val_acc),
        ):
            self.ctx.status.scalar(metric, variant, epoch, value, message=f"{metric}/{variant}")
        fields: dict[str, Any] = {
            "epoch": epoch,
            "max_epoch": self.num_epochs,
            "time_per_epoch": time_per_epoch,
            "eta": time_per_epoch * (self.stop_at - epoch),
            "graphical": self.history[-1],
            "kpi": {"val_accuracy": val_acc, "val_loss": val_loss},
        }
        if checkpoint is not None:
            fields["checkpoint"] = checkpoint
        progress = (
            f"epoch {epoch}/{self.num_epochs} loss={train_loss:.4f} acc={train_acc:.4f} "
            f"val_loss={val_loss:.4f} val_acc={val_acc:.4f}"
        )
        self.ctx.status.status("RUNNING", progress, **fields)
        self.ctx.log(progress + (f" checkpoint={checkpoint}" if checkpoint else ""))

    def pace(self, epoch_started: float) -> None:
        """Sleep out ``min_epoch_seconds`` in short slices so SIGTERM is noticed promptly."""
        while not self.ctx.stop.requested:
            remaining = epoch_started + self.min_epoch_seconds - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(PACE_SLICE_SECONDS, remaining))

    def pause(self) -> int:
        """Checkpoint the last epoch boundary, report PAUSED, and exit 75 so we get resumed."""
        k = self.completed
        checkpoint = self.save_checkpoint(k, self.boundary)
        self.write_summary("PAUSED")
        message = f"paused by SIGTERM after {k} completed epochs; checkpoint {checkpoint}"
        self.ctx.log(message)
        self.ctx.status.status(
            "PAUSED", message, epoch=k, max_epoch=self.num_epochs, checkpoint=checkpoint
        )
        return EXIT_PAUSED

    def kpi(self) -> dict[str, Any]:
        last = self.history[-1] if self.history else {}
        return {
            "best_val_accuracy": self.best_val_accuracy if self.history else None,
            "best_epoch": self.best_epoch if self.history else None,
            "val_accuracy": last.get("val_accuracy"),
            "val_loss": last.get("val_loss"),
            "train_accuracy": last.get("accuracy"),
            "train_loss": last.get("loss"),
        }

    def write_summary(self, status: str) -> None:
        results.write_json(
            self.ctx.results_dir / results.TRAIN_SUMMARY,
            {
                "job_id": self.ctx.job_id,
                "run": self.ctx.run,
                "status": status,
                "epochs_completed": self.completed,
                "max_epoch": self.num_epochs,
                "early_stop_epoch": self.early_stop_epoch,
                "early_stopped": status == "SUCCESS" and self.completed < self.num_epochs,
                "kpi": self.kpi(),
                "history": self.history,
                "checkpoints": [
                    path.relative_to(self.ctx.results_dir).as_posix()
                    for _, path in results.epoch_checkpoints(self.ctx.results_dir)
                ],
                "best_model": results.BEST,
                "latest_model": results.LATEST,
                "num_gpus_requested": self.spec["train"]["num_gpus"],
                "run_seconds": time.monotonic() - self.started,
                "spec": self.spec,
            },
        )

    def finish(self) -> int:
        """Report SUCCESS (full run, early stop, or nothing left to do after a resume)."""
        self.write_summary("SUCCESS")
        k = self.completed
        best = f"best val_accuracy={self.best_val_accuracy:.4f} at epoch {self.best_epoch}"
        if k < self.num_epochs:
            message = (
                f"early stop after epoch {k} of {self.num_epochs} "
                f"(train.early_stop_epoch={self.early_stop_epoch}); model saved; {best}"
            )
        else:
            message = f"training finished: {k}/{self.num_epochs} epochs; {best}"
        self.ctx.log(message)
        self.ctx.status.status(
            "SUCCESS", message, epoch=k, max_epoch=self.num_epochs, kpi=self.kpi()
        )
        return EXIT_SUCCESS
