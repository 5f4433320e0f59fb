"""Initialisers: NumPy draws with torch's fan conventions, seeded, identical on both engines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nebulae.astro import init

pytestmark = pytest.mark.once


@pytest.mark.parametrize("shape", [(7, 5), (8, 3, 3, 3), (4, 2, 5), (6, 2, 3, 3, 3)])
def test_fans_match_torch(shape):
    import torch

    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init.fans(shape) == (fan_in, fan_out)


def test_distributions_have_the_documented_moments():
    init.seed(0)
    shape = (400, 300)
    fi, fo = init.fans(shape)
    assert init.XavierNorm()(shape).std() == pytest.approx(math.sqrt(2 / (fi + fo)), rel=0.02)
    bound = math.sqrt(6 / (fi + fo))
    u = init.XavierUnif()(shape)
    assert u.max() <= bound and u.min() >= -bound and u.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    n = init.Normal(mean=1.0, std=0.5)(shape)
    assert n.mean() == pytest.approx(1.0, abs=0.01) and n.std() == pytest.approx(0.5, rel=0.02)
    un = init.Uniform(min=2, max=3)(shape)
    assert un.min() >= 2 and un.max() <= 3
    assert np.all(init.Ones(scale=3)((2, 2)) == 3) and np.all(init.Zeros()((2, 2)) == 0)
    assert init.XavierNorm(scale=2.0)((500, 500)).std() == pytest.approx(2 * math.sqrt(2 / 1000), rel=0.03)
    for arr in (u, n, un):
        assert arr.dtype == np.float32


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (8, 2, 3, 3)])
def test_orthogonal_rows_or_columns(shape):
    w = init.Orthog()(shape).reshape(shape[0], -1).astype(np.float64)
    if w.shape[0] <= w.shape[1]:
        np.testing.assert_allclose(w @ w.T, np.eye(w.shape[0]), atol=1e-5)
    else:
        np.testing.assert_allclose(w.T @ w, np.eye(w.shape[1]), atol=1e-5)


def test_seed_reproduces_and_void_means_no_bias(both):
    init.seed(11)
    a = init.XavierNorm()((3, 4))
    init.seed(11)
    b = init.XavierNorm()((3, 4))
    assert np.array_equal(a, b)
    assert init.make(init.Void(), (3,)) is None
    tdock, jdock = both
    assert tdock.Dense(2, 2, b_init=init.Void()).bias is None
    assert jdock.Dense(2, 2, b_init=init.Void()).bias is None
    with pytest.raises(ValueError, match=r"shape \(2,\), expected \(3,\)"):
        init.make(np.zeros(2), (3,))


def test_same_seed_builds_the_same_conv_on_both_engines(both):
    weights = []
    for dock in both:
        init.seed(5)
        weights.append(dock.Conv(3, 4, (3, 5), w_init=init.Orthog(), b_init=init.Normal()).export_weights())
    for key in weights[0]:
        assert np.array_equal(weights[0][key], weights[1][key]), key


def test_layers_after_a_dropout_get_the_same_weights_on_both_engines(both):
    weights = []
    for dock in both:
        init.seed(2)
        dock.Dropout(0.1)
        weights.append(dock.Dense(3, 3).export_weights()["weight"])
    assert np.array_equal(weights[0], weights[1])
