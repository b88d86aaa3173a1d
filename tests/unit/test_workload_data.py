"""The shipped digits data and its deterministic, stratified split."""

from __future__ import annotations

import numpy as np
import pytest

from jobyard.workloads import data


def test_digits_load_from_the_package_normalised():
    x, y = data.load_digits()
    assert x.shape == (1797, 64) and y.shape == (1797,)
    assert x.min() == 0.0 and x.max() == 1.0
    assert sorted(np.unique(y).tolist()) == list(range(10))


@pytest.mark.parametrize("val_split", [0.05, 0.2, 0.5])
def test_split_is_disjoint_complete_and_stratified(val_split):
    split = data.load_split(val_split)
    train, val = set(split.train_index.tolist()), set(split.val_index.tolist())
    assert not train & val and len(train | val) == 1797
    assert len(val) == pytest.approx(1797 * val_split, abs=10)
    assert sorted(np.unique(split.y_val).tolist()) == list(range(10))
    _, y = data.load_digits()
    np.testing.assert_array_equal(split.y_val, y[split.val_index])


def test_split_is_deterministic_and_depends_only_on_val_split():
    a, b = data.load_split(0.2), data.load_split(0.2)
    np.testing.assert_array_equal(a.val_index, b.val_index)
    assert not np.array_equal(a.val_index, data.load_split(0.3).val_index[: len(a.val_index)])


def test_invalid_val_split_is_rejected():
    with pytest.raises(ValueError, match="val_split"):
        data.split_indices(np.zeros(10, dtype=np.int64), 1.0)
