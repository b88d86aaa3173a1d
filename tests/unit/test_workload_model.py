"""The numpy MLP: gradients are right, training lowers the loss, checkpoints round-trip."""

from __future__ import annotations

import numpy as np
import pytest

from jobyard.workloads import data
from jobyard.workloads.model import MLP, PARAM_NAMES


def _tiny_batch(seed=0, n=12, features=5, classes=3):
    rng = np.random.default_rng(seed)
    return rng.random((n, features)), rng.integers(0, classes, n).astype(np.int64)


def test_analytic_gradients_match_finite_differences():
    x, y = _tiny_batch()
    model = MLP.init(5, 4, 3, seed=1)
    _, grads = model.loss_and_grads(x, y)
    eps = 1e-6
    for name in PARAM_NAMES:
        values = model.params[name]
        numeric = np.zeros_like(values)
        for index in np.ndindex(values.shape):
            original = values[index]
            values[index] = original + eps
            plus = model.loss(x, y)
            values[index] = original - eps
            minus = model.loss(x, y)
            values[index] = original
            numeric[index] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-4, atol=1e-7, err_msg=name)


def test_gradient_steps_decrease_the_loss():
    split = data.load_split(0.2)
    model = MLP.init(data.N_FEATURES, 32, 10, seed=3)
    before = model.loss(split.x_train, split.y_train)
    losses = []
    for _ in range(20):
        loss, grads = model.loss_and_grads(split.x_train, split.y_train)
        losses.append(loss)
        model.sgd_step(grads, learning_rate=0.5, momentum=0.0)
    after = model.loss(split.x_train, split.y_train)
    assert losses[0] == pytest.approx(before)
    assert after < 0.5 * before
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False))


def test_momentum_accumulates_in_the_velocity_buffers():
    x, y = _tiny_batch()
    model = MLP.init(5, 4, 3, seed=1)
    _, grads = model.loss_and_grads(x, y)
    w1 = model.params["w1"].copy()
    model.sgd_step(grads, learning_rate=0.1, momentum=0.9)
    np.testing.assert_allclose(model.velocity["w1"], -0.1 * grads["w1"])
    np.testing.assert_allclose(model.params["w1"], w1 - 0.1 * grads["w1"])


def test_init_is_deterministic_given_the_seed():
    a, b, c = (MLP.init(64, 8, 10, seed=s) for s in (7, 7, 8))
    assert all(np.array_equal(a.params[n], b.params[n]) for n in PARAM_NAMES)
    assert not np.array_equal(a.params["w1"], c.params["w1"])


def test_save_load_roundtrip_keeps_weights_momentum_and_metadata(tmp_path):
    x, y = _tiny_batch()
    model = MLP.init(5, 4, 3, seed=1)
    for _ in range(3):
        _, grads = model.loss_and_grads(x, y)
        model.sgd_step(grads, 0.1, 0.9)
    meta = {"epoch": 3, "history": [{"loss": 1.5}], "note": "ü"}
    path = tmp_path / "deep" / "ckpt.npz"
    model.save(path, meta)
    loaded, loaded_meta = MLP.load(path)
    assert loaded_meta == meta
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(loaded.params[name], model.params[name])
        np.testing.assert_array_equal(loaded.velocity[name], model.velocity[name])
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt.npz"]  # no temp files left


def test_save_without_optimizer_loads_with_zero_momentum(tmp_path):
    x, y = _tiny_batch()
    model = MLP.init(5, 4, 3, seed=1)
    _, grads = model.loss_and_grads(x, y)
    model.sgd_step(grads, 0.1, 0.9)
    model.save(tmp_path / "m.npz", {}, with_optimizer=False)
    loaded, _ = MLP.load(tmp_path / "m.npz")
    assert all(not loaded.velocity[n].any() for n in PARAM_NAMES)
    np.testing.assert_array_equal(loaded.params["w2"], model.params["w2"])


def test_copy_is_deep():
    model = MLP.init(5, 4, 3, seed=1)
    twin = model.copy()
    twin.params["w1"] += 1.0
    twin.velocity["b2"] += 1.0
    assert not np.array_equal(twin.params["w1"], model.params["w1"])
    assert not model.velocity["b2"].any()


def test_predict_and_evaluate_agree():
    x, y = _tiny_batch(n=30)
    model = MLP.init(5, 6, 3, seed=2)
    probs = model.predict_proba(x)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    loss, accuracy = model.evaluate(x, y)
    assert accuracy == pytest.approx(np.mean(model.predict(x) == y))
    assert loss == pytest.approx(model.loss(x, y))
