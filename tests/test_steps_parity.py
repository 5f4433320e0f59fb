"""Training steps give the same numbers on both engines (same seed, same batches), in one process."""

from __future__ import annotations

import numpy as np
import pytest

from nebulae.astro import init
from tests.conftest import assert_close
from tests.models.steps import cnn, mlp, train_dev

pytestmark = pytest.mark.once


def _batches(kind: str, steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    shape = (8, 12) if kind == "mlp" else (8, 3, 8, 8)
    distinct = [(rng.normal(size=shape).astype(np.float32), rng.integers(0, 5, size=8)) for _ in range(4)]
    return [distinct[i % 4] for i in range(steps)]  # a small fixed set, revisited, so the loss can fall


def _trajectory(dock, kind, optimizer, steps=20, **opt_args):
    init.seed(3)
    net = mlp(dock) if kind == "mlp" else cnn(dock)
    train, dev = train_dev(dock, net, optimizer, **opt_args)
    losses = [dock.shell(train(dock.coat(x), dock.coat(z))) for x, z in _batches(kind, steps)]
    x, z = _batches(kind, 1, seed=9)[0]
    with dock.Nozzle():
        logits = dev(dock.coat(x))
    return np.array(losses), dock.shell(logits), net.export_weights(), train


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize(
    "optimizer, args",
    [
        ("Momentum", {"lr": 0.05, "wd": 1e-4}),
        ("Adam", {"lr": 1e-2, "wd": 1e-4, "lr_decay": "cos", "warmup": 3}),
    ],
)
def test_loss_trajectories_agree_between_engines(both, kind, optimizer, args):
    tdock, jdock = both
    if args.get("lr_decay") == "cos":
        args = {**args, "lr_decay": tdock.CosLR(30)}
    lt, yt, wt, train_t = _trajectory(tdock, kind, optimizer, **args)
    lj, yj, wj, train_j = _trajectory(jdock, kind, optimizer, **args)
    assert lt[-4:].mean() < lt[:4].mean(), "training should reduce the loss"
    np.testing.assert_allclose(lj, lt, rtol=1e-4, err_msg="loss trajectory, jax vs torch")
    assert_close(yj, yt, rtol=1e-3, atol=1e-4, what="eval logits after training")
    for key in wt:
        assert_close(wj[key], wt[key], rtol=1e-3, atol=1e-4, what=key)
    assert train_t.optz.lr == pytest.approx(train_j.optz.lr, rel=1e-6)
    assert train_j.traces == 1


def _sgd_reference(weights, grads_fn, lr, mmnt, steps):
    """Hand-written momentum SGD (torch semantics) for the outside reference."""
    buf = {k: np.zeros_like(v) for k, v in weights.items()}
    for _ in range(steps):
        g = grads_fn(weights)
        for k in weights:
            buf[k] = mmnt * buf[k] + g[k]
            weights[k] = weights[k] - lr * buf[k]
    return weights


def test_momentum_matches_a_hand_written_update(both):
    tdock, jdock = both
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    target = rng.normal(size=(16, 2)).astype(np.float32)

    def grads_fn(w):
        err = x @ w["weight"].T + w["bias"] - target
        scale = 2.0 / err.size
        return {"weight": scale * err.T @ x, "bias": scale * err.sum(0)}

    for dock in both:
        init.seed(1)
        layer = dock.Dense(4, 2)
        start = {k: v.astype(np.float64) for k, v in layer.export_weights().items()}

        class Fit(dock.Craft):
            def __init__(self):
                super().__init__("FIT")
                self.layer, self.loss = layer, dock.MSE()
                self.optz = dock.Momentum(layer, lr=0.1, mmnt=0.9)

            def run(self, x, y):
                loss = self.loss(self.layer(x), y)
                self.optz(loss)
                return loss

        fit = Fit()
        for _ in range(5):
            fit(dock.coat(x), dock.coat(target))
        ref = _sgd_reference(start, grads_fn, 0.1, 0.9, 5)
        got = layer.export_weights()
        for k in ref:
            assert_close(got[k], ref[k], rtol=1e-4, atol=1e-6, what=f"{k} on {dock.__name__}")


def test_prober_input_gradients_agree_between_engines(both):
    results = []
    x = np.random.default_rng(2).normal(size=(4, 12)).astype(np.float32)
    z = np.array([0, 1, 2, 3])
    for dock in both:
        init.seed(5)
        net = mlp(dock, bn=False)

        class Saliency(dock.Craft):
            def __init__(self):
                super().__init__("SALIENCY")
                self.net, self.loss = net, dock.SftmXE()

            def run(self, x, z):
                return self.loss(self.net(x), z)

        probe = Saliency()
        before = net.export_weights()
        with dock.Prober(wrt=0) as pb:
            loss = probe(dock.coat(x), dock.coat(z))
        results.append(
            (
                dock.shell(loss),
                dock.shell(pb.grads["inputs"][0]),
                {k: dock.shell(v) for k, v in pb.grads["params"].items()},
            )
        )
        for k, v in net.export_weights().items():
            assert_close(v, before[k], rtol=0, atol=0, what=f"Prober must not update {k}")
    (lt, gt, pt), (lj, gj, pj) = results
    assert lt == pytest.approx(lj, rel=1e-6)
    assert gt.shape == x.shape and np.abs(gt).sum() > 0
    assert_close(gj, gt, what="input gradients")
    assert sorted(pt) == sorted(pj)
    for k in pt:
        assert_close(pj[k], pt[k], what=f"parameter gradient {k}")
    # outside reference: central finite differences on one input element
    tdock = both[0]
    import torch

    init.seed(5)
    net = mlp(tdock, bn=False)
    loss_fn = tdock.SftmXE()
    eps = 1e-3
    xp, xm = x.copy(), x.copy()
    xp[1, 3] += eps
    xm[1, 3] -= eps
    with torch.no_grad():
        fd = (
            loss_fn(net(torch.from_numpy(xp)), torch.from_numpy(z))
            - loss_fn(net(torch.from_numpy(xm)), torch.from_numpy(z))
        ) / (2 * eps)
    assert float(fd) == pytest.approx(gt[1, 3], rel=1e-2, abs=1e-4)


@pytest.mark.parametrize(
    "optimizer, args",
    [
        ("Momentum", {"lr": 0.05, "mmnt": 0.8, "wd": 1e-3}),
        ("Nesterov", {"lr": 0.05, "wd": 1e-3}),
        ("RMSProp", {"lr": 1e-3, "wd": 1e-3}),
        ("RMSProp", {"lr": 1e-3, "mmnt": 0.5}),
        ("Adam", {"lr": 1e-2, "wd": 1e-3}),
        ("AdamW", {"lr": 1e-2, "wd": 0.1}),
        ("Lion", {"lr": 1e-3, "wd": 0.1}),
        ("Lamb", {"lr": 1e-2, "wd": 0.01}),
        ("Adam", {"lr": 1e-2, "grad_limit": 0.1, "lr_decay": "wavy", "warmup": 2}),
    ],
)
def test_every_optimizer_agrees_between_engines(both, optimizer, args):
    tdock, jdock = both
    if args.get("lr_decay") == "wavy":
        args = {**args, "lr_decay": tdock.WavyLR(4, 0.8)}
    lt, _, wt, _ = _trajectory(tdock, "mlp", optimizer, steps=10, **args)
    lj, _, wj, _ = _trajectory(jdock, "mlp", optimizer, steps=10, **args)
    np.testing.assert_allclose(lj, lt, rtol=1e-4, err_msg=f"{optimizer} loss trajectory")
    for key in wt:
        assert_close(wj[key], wt[key], rtol=1e-3, atol=2e-5, what=f"{optimizer} {key}")


def test_pooling_and_padding_layers_train_identically(both):
    """Gradients flow through MaxPool/AvgPool/Pad inside a compiled step (and match torch)."""

    def pooled(dock):
        class Pooled(dock.Craft):
            def __init__(self):
                super().__init__("POOLED")
                self.conv = dock.Conv(3, 4, (3, 3), padding=1)
                self.pad = dock.Pad([1, 1, 1, 1])
                self.mpool, self.apool = dock.MaxPool((2, 2)), dock.AvgPool((2, 2))
                self.gap = dock.AvgPool((-1, -1))
                self.fc = dock.Dense(4, 5)

            def run(self, x):
                y = self.apool(self.mpool(self.pad(self.conv(x))))
                return self.fc(self.gap(y).reshape(x.shape[0], -1))

        return Pooled()

    results = []
    for dock in both:
        init.seed(8)
        net = pooled(dock)
        train, _ = train_dev(dock, net, "Adam", lr=1e-2)
        losses = [dock.shell(train(dock.coat(x), dock.coat(z))) for x, z in _batches("cnn", 6)]
        results.append((np.array(losses), net.export_weights()))
    (lt, wt), (lj, wj) = results
    np.testing.assert_allclose(lj, lt, rtol=1e-4)
    assert not np.allclose(wt["conv/weight"], pooled(both[0]).export_weights()["conv/weight"])
    for key in wt:
        assert_close(wj[key], wt[key], rtol=1e-3, atol=1e-5, what=key)
