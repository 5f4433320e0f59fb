"""Faults in training (issue 17): a NaN or inf in a batch or a loss skips the update (or raises), on the bound
engine (both passes), against torch.optim runs that never saw the bad batch."""

from __future__ import annotations

import sys
from array import array
from collections import deque

import numpy as np
import pytest
import torch

from tests.conftest import assert_close
from tests.models.steps import fit_dense

RNG = np.random.default_rng(17)
W, B = RNG.normal(size=(3, 4)).astype(np.float32), RNG.normal(size=3).astype(np.float32)
XS = [RNG.normal(size=(8, 4)).astype(np.float32) for _ in range(6)]
TS = [RNG.normal(size=(8, 3)).astype(np.float32) for _ in range(6)]


def _poisoned(x: np.ndarray, value: float) -> np.ndarray:
    x = x.copy()
    x[2, 1] = value
    return x


def _fit(dock, **args):
    return fit_dense(dock, W, B, "Adam", **args)


def _weights(fit) -> dict:
    return {k: np.array(v) for k, v in fit.layer.export_weights().items()}


def _step(dock, fit, x, t):
    dock.shell(fit(dock.coat(x), dock.coat(t)))


def _reference(batches, lr_of, accum: int = 1) -> dict:
    """torch.optim.Adam over the clean batches only (`accum` micro-batches per step, their mean gradient)."""
    layer = torch.nn.Linear(4, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(W)), layer.bias.copy_(torch.from_numpy(B))
    opt = torch.optim.Adam(layer.parameters(), lr=lr_of(0))
    for n in range(0, len(batches), accum):
        opt.zero_grad()
        for x, t in batches[n : n + accum]:
            (((layer(torch.from_numpy(x)) - torch.from_numpy(t)) ** 2).mean() / accum).backward()
        for group in opt.param_groups:
            group["lr"] = lr_of(n // accum)
        opt.step()
    return {"weight": layer.weight.detach().numpy(), "bias": layer.bias.detach().numpy()}


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_bad_batch_is_skipped_by_default_and_training_goes_on_as_without_it(dock, bad):
    fit = _fit(dock, lr=0.05, warmup=3)  # the warm-up shows which counter the schedule follows
    _step(dock, fit, XS[0], TS[0])
    after_first = _weights(fit)
    _step(dock, fit, _poisoned(XS[1], bad), TS[1])
    for key, value in _weights(fit).items():
        np.testing.assert_array_equal(value, after_first[key], err_msg=f"{key} changed by a skipped update")
    assert (fit.optz.skipped, fit.optz.updates) == (1, 1)
    for x, t in zip(XS[2:4], TS[2:4]):
        _step(dock, fit, x, t)
    clean = [(XS[0], TS[0]), (XS[2], TS[2]), (XS[3], TS[3])]
    ref = _reference(clean, fit.optz.conf.rate)
    for key, value in _weights(fit).items():
        assert np.all(np.isfinite(value))
        assert_close(value, ref[key], rtol=1e-5, atol=1e-6, what=f"{key} vs torch.optim without the bad batch")
    assert (fit.optz.skipped, fit.optz.updates) == (1, 3)


def test_a_bad_micro_batch_skips_its_whole_grad_accum_cycle(dock):
    fit = _fit(dock, lr=0.05, grad_accum=2)
    batches = list(zip(XS, TS))
    batches[3] = (_poisoned(XS[3], np.nan), TS[3])  # the second cycle: calls 3 and 4
    for x, t in batches:
        _step(dock, fit, x, t)
    assert (fit.optz.skipped, fit.optz.updates) == (1, 2)
    ref = _reference(batches[:2] + batches[4:], fit.optz.conf.rate, accum=2)
    for key, value in _weights(fit).items():
        assert_close(value, ref[key], rtol=1e-5, atol=1e-6, what=f"{key} vs torch.optim without the bad cycle")


def test_two_optimizers_in_one_step_decide_each_for_its_own_loss(dock):
    first, second = dock.Dense(4, 3), dock.Dense(4, 3)
    for layer in (first, second):
        layer.import_weights({"weight": W, "bias": B})

    class Two(dock.Craft):
        def __init__(self):
            super().__init__("TWO")
            self.first, self.second = first, second
            self.opt1, self.opt2 = dock.Adam(first, lr=0.05), dock.Adam(second, lr=0.05)

        def run(self, x1, x2, t):
            self.opt1(((self.first(x1) - t) ** 2).mean())
            self.opt2(((self.second(x2) - t) ** 2).mean())
            return t

    two = Two()
    for n, (x, t) in enumerate(zip(XS[:3], TS[:3])):
        dock.shell(two(dock.coat(x), dock.coat(_poisoned(x, np.nan) if n == 1 else x), dock.coat(t)))
    assert (two.opt1.skipped, two.opt1.updates, two.opt2.skipped, two.opt2.updates) == (0, 3, 1, 2)
    ref1 = _reference(list(zip(XS[:3], TS[:3])), two.opt1.conf.rate)
    ref2 = _reference([(XS[0], TS[0]), (XS[2], TS[2])], two.opt2.conf.rate)
    for layer, ref in ((first, ref1), (second, ref2)):
        for key, value in layer.export_weights().items():
            assert_close(value, ref[key], rtol=1e-5, atol=1e-6, what=key)


@pytest.mark.parametrize("accum", [1, 2])
def test_under_mixp_the_loss_scaler_skips_counts_and_backs_off_once_per_update(dock, accum):
    fit = _fit(dock, lr=0.05, mixp=True, grad_accum=accum)
    batches = list(zip(XS, TS))[: 2 * accum]
    batches[accum] = (_poisoned(XS[accum], np.inf), TS[accum])  # the first call of the second update
    for x, t in batches[:accum]:
        _step(dock, fit, x, t)
    after_first = _weights(fit)
    for x, t in batches[accum:]:
        _step(dock, fit, x, t)
    for key, value in _weights(fit).items():
        np.testing.assert_array_equal(value, after_first[key], err_msg=key)
    assert (fit.optz.skipped, fit.optz.updates, fit.optz.loss_scale) == (1, 1, 2.0**15)


def test_nonfinite_raise_names_the_call_and_leaves_the_weights(dock):
    fit = _fit(dock, lr=0.05, nonfinite="raise")
    _step(dock, fit, XS[0], TS[0])
    _step(dock, fit, XS[1], TS[1])
    before = _weights(fit)
    with pytest.raises(
        FloatingPointError, match=r"Adam: the loss or a gradient is not finite .* at call 3 \(update 3\)"
    ):
        _step(dock, fit, _poisoned(XS[2], np.nan), TS[2])
    for key, value in _weights(fit).items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)
    _step(dock, fit, XS[3], TS[3])  # training can go on after the error
    ref = _reference([(XS[0], TS[0]), (XS[1], TS[1]), (XS[3], TS[3])], fit.optz.conf.rate)
    for key, value in _weights(fit).items():
        assert_close(value, ref[key], rtol=1e-5, atol=1e-6, what=key)


def test_nonfinite_ignore_applies_the_update_and_a_bad_choice_is_refused(dock):
    fit = _fit(dock, lr=0.05, nonfinite="ignore")
    _step(dock, fit, _poisoned(XS[0], np.nan), TS[0])
    assert not np.any(np.isfinite(_weights(fit)["weight"]))
    assert (fit.optz.skipped, fit.optz.updates) == (0, 1)
    with pytest.raises(ValueError, match=r"Adam: nonfinite must be one of \['skip', 'raise', 'ignore'\], got 'drop'"):
        dock.Adam(dock.Dense(4, 3), lr=0.1, nonfinite="drop")


def _held(obj, seen=None) -> int:
    """Bytes of the containers (lists, deques, arrays, tuples, dicts) an object's slots hold, floats counted."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, (list, tuple, deque)):
        return sys.getsizeof(obj) + sum(_held(v, seen) if not isinstance(v, float) else 24 for v in obj)
    if isinstance(obj, (array, bytes)):
        return sys.getsizeof(obj)
    if isinstance(obj, dict):
        return sys.getsizeof(obj) + sum(_held(v, seen) for v in obj.values())
    slots = getattr(type(obj), "__slots__", ())
    return sum(_held(getattr(obj, k, None), seen) for k in slots) if slots else 0


def test_dashboard_history_is_bounded_and_its_csv_and_means_equal_the_full_history(tmp_path, capsys):
    from nebulae.aerolog import metrics
    from nebulae.aerolog.dashboard import DashBoard

    epochs, mpe, window = 50, 4000, 5
    values = np.sin(np.arange(epochs * mpe) * 1e-3) + (np.arange(epochs * mpe) % 7) * 0.01
    board = DashBoard(log_path=tmp_path, window=window)
    held = []
    for e in range(epochs):
        for i in range(mpe):
            board.gauge({"loss": float(values[e * mpe + i])}, i, e, mpe, interval=1000)
        if e in (9, epochs - 1):
            held.append(_held(board._stages["TRAIN"].metrics["loss"]))
    capsys.readouterr()
    # 200k miles held ~10 MB before; now the same few hundred KB after 40k and after 200k miles
    assert held[1] < 512 * 1024 and held[1] < 1.5 * held[0], held
    board.log(gauge=True)
    rows = list(metrics.read(tmp_path / "metrics.csv"))
    mile = np.array([(r.mile, r.value, r.epoch) for r in rows if r.mile is not None])
    np.testing.assert_array_equal(mile[:, 0], np.arange(1, epochs * mpe + 1))
    np.testing.assert_array_equal(mile[:, 1], values)  # every value, as given
    np.testing.assert_array_equal(mile[:, 2], np.repeat(np.arange(epochs), mpe))
    csum = np.concatenate([[0.0], np.cumsum(values)])
    n = np.minimum(np.arange(1, len(values) + 1), window)
    moving = (csum[1:] - csum[np.arange(1, len(values) + 1) - n]) / n
    plotted = board._stages["TRAIN"].metrics["loss"].plotted  # the PNG's bounded series: bucket means of `stride`
    full = len(plotted.averages) * plotted.stride
    np.testing.assert_allclose(plotted.averages, moving[:full].reshape(-1, plotted.stride).mean(1), rtol=1e-9)
    means = values.reshape(epochs, mpe).mean(axis=1)
    epoch = np.array([(r.epoch, r.value) for r in rows if r.mile is None])
    np.testing.assert_array_equal(epoch[:, 0], np.arange(epochs))
    np.testing.assert_allclose(epoch[:, 1], means, rtol=1e-10)
    assert [board.read("loss", "TRAIN", e) for e in (0, 49)] == pytest.approx(means[[0, 49]], rel=1e-10)
    assert (tmp_path / "loss_TRAIN_mile.png").exists() and (tmp_path / "loss_epoch.png").exists()
