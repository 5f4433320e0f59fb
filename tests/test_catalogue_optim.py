"""Adadelta and Adagrad (written once, in nebulae/astro/crafts/updaters.py) against torch.optim and optax,
and the optimizers' real signatures, on the bound engine (both passes)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from tests.conftest import assert_close
from tests.models.steps import fit_dense

RNG = np.random.default_rng(11)
W, B = RNG.normal(size=(3, 4)).astype(np.float32), RNG.normal(size=3).astype(np.float32)
XS = [RNG.normal(size=(8, 4)).astype(np.float32) for _ in range(6)]
TS = [RNG.normal(size=(8, 3)).astype(np.float32) for _ in range(6)]


def _fit(dock, optimizer: str, **args):
    fit = fit_dense(dock, W, B, optimizer, **args)
    losses = [float(dock.shell(fit(dock.coat(x), dock.coat(t)))) for x, t in zip(XS, TS)]
    return losses, fit.layer.export_weights(), fit.optz


def _torch_fit(make):
    layer = torch.nn.Linear(4, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(W)), layer.bias.copy_(torch.from_numpy(B))
    opt = make(layer.parameters())
    losses = []
    for x, t in zip(XS, TS):
        opt.zero_grad()
        loss = ((layer(torch.from_numpy(x)) - torch.from_numpy(t)) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, {"weight": layer.weight.detach().numpy(), "bias": layer.bias.detach().numpy()}


CASES = [
    ("Adadelta", {"lr": 1.0}, lambda p: torch.optim.Adadelta(p, lr=1.0)),
    (
        "Adadelta",
        {"lr": 0.5, "rho": 0.8, "eps": 1e-5, "wd": 0.01},
        lambda p: torch.optim.Adadelta(p, 0.5, 0.8, 1e-5, 0.01),
    ),
    ("Adagrad", {"lr": 0.1}, lambda p: torch.optim.Adagrad(p, lr=0.1)),
    (
        "Adagrad",
        {"lr": 0.05, "initial_accumulator_value": 0.1, "eps": 1e-8, "wd": 0.01},
        lambda p: torch.optim.Adagrad(p, lr=0.05, weight_decay=0.01, initial_accumulator_value=0.1, eps=1e-8),
    ),
]


@pytest.mark.parametrize("optimizer, args, reference", CASES)
def test_adadelta_and_adagrad_follow_torch_optim(dock, optimizer, args, reference):
    losses, weights, optz = _fit(dock, optimizer, **args)
    ref_losses, ref = _torch_fit(reference)
    assert_close(losses, ref_losses, rtol=1e-5, atol=1e-6, what=f"{optimizer} losses vs torch.optim")
    for key in ref:
        assert_close(weights[key], ref[key], rtol=1e-5, atol=1e-6, what=f"{optimizer} {key} vs torch.optim")
    assert optz.updates == len(XS)


def test_adadelta_follows_optax(dock):
    import jax.numpy as jnp
    import optax

    _, weights, _ = _fit(dock, "Adadelta", lr=1.0, rho=0.9, eps=1e-6)
    tx = optax.adadelta(1.0, rho=0.9, eps=1e-6)
    params = {"weight": jnp.asarray(W), "bias": jnp.asarray(B)}
    state = tx.init(params)

    def loss_fn(p, x, t):
        return ((x @ p["weight"].T + p["bias"] - t) ** 2).mean()

    import jax

    for x, t in zip(XS, TS):
        grads = jax.grad(loss_fn)(params, x, t)
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    for key in params:
        assert_close(weights[key], np.asarray(params[key]), rtol=1e-5, atol=1e-6, what=f"Adadelta {key} vs optax")


def test_optimizers_show_their_own_arguments(dock):
    sig = inspect.signature(dock.Adagrad)
    assert list(sig.parameters)[:2] == ["hull", "lr"]
    assert sig.parameters["initial_accumulator_value"].default == 0.0
    assert sig.parameters["initial_accumulator_value"].kind is inspect.Parameter.KEYWORD_ONLY
    assert inspect.signature(dock.Adadelta).parameters["rho"].default == 0.9
    assert "mmnt1" in inspect.signature(dock.Adam).parameters
    for name in ("Adadelta", "Adagrad", "Adam", "Momentum"):
        doc = getattr(dock, name).__doc__
        assert "Args:" in doc and "hull:" in doc and "update_scope:" in doc, name
    layer = dock.Dense(4, 3)
    with pytest.raises(TypeError, match=r"Adagrad got unknown arguments \['rho'\]"):
        dock.Adagrad(layer, lr=0.1, rho=0.9)
