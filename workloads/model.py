"""A one-hidden-layer MLP classifier in plain numpy, trained by mini-batch SGD with momentum.

Small on purpose: it trains in well under a second on a laptop core yet behaves like a real
model (loss goes down, accuracy goes up, checkpoints restore it exactly), which is all the
reference workload needs to exercise jobyard end to end. Checkpoints are ``.npz`` files
without pickles: the weights, the optimizer's momentum buffers and a JSON metadata string.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PARAM_NAMES = ("w1", "b1", "w2", "b2")
_VELOCITY_PREFIX = "v_"
_METADATA_KEY = "metadata"


@dataclass
class Forward:
    """Intermediate values of one forward pass, kept because backprop needs them."""

    hidden: FloatArray
    probs: FloatArray


def softmax(logits: FloatArray) -> FloatArray:
    """Row-wise softmax, shifted by the row maximum so large logits do not overflow."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True), dtype=np.float64)


def cross_entropy(probs: FloatArray, labels: IntArray) -> float:
    """Mean negative log-likelihood of the true labels (probabilities clipped away from 0)."""
    picked = probs[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, None))))


class MLP:
    """``probs = softmax(relu(x @ w1 + b1) @ w2 + b2)`` plus SGD momentum buffers.

    Parameters live in ``params`` and momentum buffers in ``velocity``, both keyed by
    ``PARAM_NAMES``, so saving, loading and copying are uniform loops.
    """

    def __init__(self, params: dict[str, FloatArray], velocity: dict[str, FloatArray]) -> None:
        missing = [name for name in PARAM_NAMES if name not in params]
        if missing:
            raise ValueError(f"missing parameters: {missing}")
        self.params = {name: np.asarray(params[name], dtype=np.float64) for name in PARAM_NAMES}
        self.velocity = {
            name: np.asarray(velocity[name], dtype=np.float64)
            if name in velocity
            else np.zeros_like(self.params[name])
            for name in PARAM_NAMES
        }

    @classmethod
    def init(cls, n_features: int, hidden_size: int, n_classes: int, seed: int) -> MLP:
        """He-initialised weights (suits ReLU), zero biases and zero momentum; seeded."""
        rng = np.random.default_rng(seed)
        params = {
            "w1": rng.standard_normal((n_features, hidden_size)) * np.sqrt(2.0 / n_features),
            "b1": np.zeros(hidden_size),
            "w2": rng.standard_normal((hidden_size, n_classes)) * np.sqrt(1.0 / hidden_size),
            "b2": np.zeros(n_classes),
        }
        return cls(params, {})

    @property
    def n_features(self) -> int:
        return int(self.params["w1"].shape[0])

    @property
    def hidden_size(self) -> int:
        return int(self.params["w1"].shape[1])

    @property
    def n_classes(self) -> int:
        return int(self.params["w2"].shape[1])

    def copy(self) -> MLP:
        """A deep copy: the trainer keeps one at each epoch boundary for pause checkpoints."""
        return MLP(
            {k: v.copy() for k, v in self.params.items()},
            {k: v.copy() for k, v in self.velocity.items()},
        )

    def forward(self, x: FloatArray) -> Forward:
        p = self.params
        hidden = np.maximum(x @ p["w1"] + p["b1"], 0.0)
        return Forward(hidden=hidden, probs=softmax(hidden @ p["w2"] + p["b2"]))

    def predict_proba(self, x: FloatArray) -> FloatArray:
        return self.forward(x).probs

    def predict(self, x: FloatArray) -> IntArray:
        return np.asarray(self.predict_proba(x).argmax(axis=1), dtype=np.int64)

    def loss(self, x: FloatArray, y: IntArray) -> float:
        return cross_entropy(self.predict_proba(x), y)

    def loss_and_grads(self, x: FloatArray, y: IntArray) -> tuple[float, dict[str, FloatArray]]:
        """Mean cross-entropy on the batch and its gradient for every parameter."""
        p = self.params
        fwd = self.forward(x)
        n = len(y)
        dlogits = fwd.probs.copy()
        dlogits[np.arange(n), y] -= 1.0
        dlogits /= n
        dhidden = (dlogits @ p["w2"].T) * (fwd.hidden > 0.0)
        grads = {
            "w1": x.T @ dhidden,
            "b1": dhidden.sum(axis=0),
            "w2": fwd.hidden.T @ dlogits,
            "b2": dlogits.sum(axis=0),
        }
        return cross_entropy(fwd.probs, y), grads

    def sgd_step(self, grads: dict[str, FloatArray], learning_rate: float, momentum: float) -> None:
        """Classical momentum: ``v = momentum * v - lr * g``; ``param += v`` (in place)."""
        for name in PARAM_NAMES:
            v = self.velocity[name]
            v *= momentum
            v -= learning_rate * grads[name]
            self.params[name] += v

    def evaluate(self, x: FloatArray, y: IntArray) -> tuple[float, float]:
        """(mean loss, accuracy) over the given samples."""
        probs = self.predict_proba(x)
        accuracy = float(np.mean(probs.argmax(axis=1) == y))
        return cross_entropy(probs, y), accuracy

    def save(self, path: Path, metadata: dict[str, Any], *, with_optimizer: bool = True) -> None:
        """Write an ``.npz`` atomically (temp file + rename), so a reader never sees half a file.

        A SIGKILL in the middle leaves the previous checkpoint intact, which is what makes
        resuming safe.
        """
        arrays: dict[str, Any] = dict(self.params)
        if with_optimizer:
            arrays.update({_VELOCITY_PREFIX + k: v for k, v in self.velocity.items()})
        arrays[_METADATA_KEY] = np.array(json.dumps(metadata, sort_keys=True))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path) -> tuple[MLP, dict[str, Any]]:
        """Read a checkpoint written by ``save``: (model with momentum restored, metadata)."""
        with np.load(path, allow_pickle=False) as data:
            params = {name: np.array(data[name], dtype=np.float64) for name in PARAM_NAMES}
            velocity = {
                name: np.array(data[_VELOCITY_PREFIX + name], dtype=np.float64)
                for name in PARAM_NAMES
                if _VELOCITY_PREFIX + name in data.files
            }
            metadata = json.loads(str(data[_METADATA_KEY])) if _METADATA_KEY in data.files else {}
        if not isinstance(metadata, dict):
            raise ValueError(f"{path}: metadata is not a JSON object")
        return cls(params, velocity), metadata
