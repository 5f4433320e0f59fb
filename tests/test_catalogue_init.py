"""torch.nn's default initialisation (TorchUnif), per craft and globally (default_init), on the bound engine."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nebulae.astro import init


def _ratio(array: np.ndarray, fan_in: int) -> float:
    """max |value| in units of torch's bound 1/sqrt(fan_in)."""
    return float(np.abs(array).max() * math.sqrt(fan_in))


LAYERS = [  # (our craft, torch.nn layer, fan_in of the weight as torch computes it)
    (lambda d, **k: d.Dense(300, 200, **k), lambda: torch.nn.Linear(300, 200), 300),
    (lambda d, **k: d.Conv(16, 64, 3, **k), lambda: torch.nn.Conv2d(16, 64, 3), 16 * 9),
    (
        lambda d, **k: d.TransConv(64, 32, 3, group=2, **k),
        lambda: torch.nn.ConvTranspose2d(64, 32, 3, groups=2),
        16 * 9,
    ),
]


@pytest.mark.parametrize("ours, theirs, fan_in", LAYERS)
def test_torch_unif_draws_what_torch_nn_draws(dock, ours, theirs, fan_in):
    init.seed(0)
    craft = ours(dock, w_init=dock.TorchUnif(), b_init=dock.TorchUnif())
    weights = craft.export_weights()
    torch.manual_seed(0)
    reference = theirs()
    for name in ("weight", "bias"):
        got, want = weights[name], getattr(reference, name).detach().numpy()
        assert got.shape == want.shape, name
        # both uniform on (-1/sqrt(fan_in), 1/sqrt(fan_in)): the same bound, nearly reached by 32+ draws
        assert 0.8 < _ratio(got, fan_in) <= 1.0, f"{name}: {_ratio(got, fan_in)}"
        assert 0.8 < _ratio(want, fan_in) <= 1.0, f"torch {name}: {_ratio(want, fan_in)}"
        assert abs(got.std() - want.std()) < 0.25 * want.std(), name


def test_default_init_switches_every_layer_built_afterwards_and_restores(dock):
    before = dock.default_init(dock.TorchUnif(), dock.TorchUnif())
    try:
        init.seed(1)
        dense = dock.Dense(300, 200).export_weights()
        init.seed(1)
        explicit = dock.Dense(300, 200, w_init=dock.TorchUnif(), b_init=dock.TorchUnif()).export_weights()
        for name in ("weight", "bias"):
            np.testing.assert_array_equal(dense[name], explicit[name])
        assert 0.8 < _ratio(dense["bias"], 300) <= 1.0  # the bias bound comes from the weight's fan_in
        conv = dock.Conv(8, 16, 3, b_init=dock.Zeros()).export_weights()
        assert not conv["bias"].any()  # an explicit initialiser still wins
    finally:
        restored = dock.default_init(*before)
    assert isinstance(restored[0], dock.TorchUnif)
    bias = dock.Dense(4, 3).export_weights()["bias"]
    assert not bias.any(), "back to the zeros default"
    with pytest.raises(TypeError, match="default_init: w_init must be an initialiser"):
        dock.default_init(w_init="torch")


def test_dense_takes_an_array_as_its_initial_weight(dock):
    weight = np.arange(12, dtype=np.float32).reshape(3, 4)
    got = dock.Dense(4, 3, w_init=weight, b_init=np.ones(3, np.float32)).export_weights()
    np.testing.assert_array_equal(got["weight"], weight)
    np.testing.assert_array_equal(got["bias"], np.ones(3))
