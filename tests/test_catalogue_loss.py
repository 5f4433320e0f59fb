"""BCE, NLL and `reduction` on every loss, against torch.nn.functional, pinned on the bound engine (so on both
across the passes).

- BCE on probabilities = torch.nn.BCELoss: logs clamped at -100, torch's gradient at p = 0 or 1, `weight`.
- NLL on log-probabilities = torch.nn.NLLLoss, with SftmXE's class-label rule; NLL(LogSoftmax(1)(x)) is
  torch's cross_entropy on x, gradient included.
- reduction='mean' | 'sum' | 'none' on MSE, MAE, Huber, Charbon, SigmXE, BCE, SftmXE and NLL; any other
  value is the same ValueError on both engines.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nebulae.astro import checks

RNG = np.random.default_rng(16)
C = 4
REDUCTIONS = ["mean", "sum", "none"]


def data(*shape, scale=1.0):
    return (RNG.normal(size=shape) * scale).astype(np.float32)


def t(a, grad=False):
    out = torch.from_numpy(np.array(a))
    return out.requires_grad_(True) if grad else out


@pytest.fixture
def value_checks_on():
    saved = checks._enabled
    checks.enable(True)
    yield
    checks._enabled = saved


@pytest.fixture
def value_checks_off():
    saved = checks._enabled
    checks.enable(False)
    yield
    checks._enabled = saved


def run(dock, craft, *inputs):
    """craft(*inputs) as NumPy (no gradient)."""
    with dock.Nozzle():
        return dock.shell(craft(*(dock.coat(a) for a in inputs)))


def loss_and_grad(dock, craft, x, y):
    """(loss, d loss / d x) of a scalar `craft(x, y)` as NumPy, through Prober."""
    with dock.Prober(wrt=(0,)) as pb:
        loss = craft(dock.coat(x), dock.coat(y))
    return dock.shell(loss), dock.shell(pb.grads["inputs"][0])


def torch_loss_and_grad(fn, x, y):
    xt = t(x, grad=True)
    loss = fn(xt, t(y))
    loss.backward()
    return loss.detach().numpy(), xt.grad.numpy()


def assert_close(ours, ref, what, rtol=1e-5, atol=1e-6):
    assert np.shape(ours) == np.shape(ref), f"{what}: shape {np.shape(ours)} vs torch {np.shape(ref)}"
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol, err_msg=what)


# ------------------------------------------------------------------------------------------------------ BCE


def probabilities(*shape):
    p = RNG.uniform(0.02, 0.98, size=shape).astype(np.float32)
    y = RNG.uniform(0.0, 1.0, size=shape).astype(np.float32)
    p.reshape(-1)[:4], y.reshape(-1)[:4] = [0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]  # log clamped at -100
    return p, y


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_matches_torch_bceloss(dock, reduction):
    p, y = probabilities(3, 5)
    ref = F.binary_cross_entropy(t(p), t(y), reduction=reduction).numpy()
    out = run(dock, dock.BCE(reduction=reduction), p, y)
    assert_close(out, ref, f"BCE {reduction}")
    if reduction == "none":
        assert_close(out.reshape(-1)[:4], np.array([0.0, 0.0, 100.0, 100.0], np.float32), "logs clamped at -100")
    if reduction != "none":
        loss, grad = loss_and_grad(dock, dock.BCE(reduction=reduction), p, y)
        ref_loss, ref_grad = torch_loss_and_grad(lambda a, b: F.binary_cross_entropy(a, b, reduction=reduction), p, y)
        assert_close(loss, ref_loss, f"BCE {reduction} loss")
        assert_close(grad, ref_grad, f"BCE {reduction} gradient (torch's at p = 0 and 1)", atol=1e-5)
        assert np.isfinite(grad).all()


def test_bce_weight_broadcasts_as_torch(dock):
    p, y = probabilities(4, 3)
    w = RNG.uniform(0.5, 2.0, size=(3,)).astype(np.float32)
    loss, grad = loss_and_grad(dock, dock.BCE(weight=w), p, y)
    ref_loss, ref_grad = torch_loss_and_grad(lambda a, b: F.binary_cross_entropy(a, b, t(w)), p, y)
    assert_close(loss, ref_loss, "weighted BCE")
    assert_close(grad, ref_grad, "weighted BCE gradient", atol=1e-5)
    ref_none = F.binary_cross_entropy(t(p), t(y), t(w), reduction="none").numpy()
    assert_close(run(dock, dock.BCE(w, reduction="none"), p, y), ref_none, "weighted BCE none")


def test_bce_rejects_bad_shapes(dock):
    p, y = probabilities(4, 3)
    with dock.Nozzle():
        with pytest.raises(ValueError, match=r"BCE: prediction \(4, 3\) and target \(4, 1\) must have the same"):
            dock.BCE()(dock.coat(p), dock.coat(y[:, :1]))
        with pytest.raises(ValueError, match=r"BCE: weight \(2,\) must broadcast to the input \(4, 3\)"):
            dock.BCE(weight=np.ones(2, np.float32))(dock.coat(p), dock.coat(y))


# ------------------------------------------------------------------------------------------------------ NLL


def log_probs(*shape):
    return torch.log_softmax(t(data(*shape, scale=2.0)), 1).numpy()


def class_ids(logp, ignored=(0, 3)):
    y = RNG.integers(0, logp.shape[1], size=logp.shape[:1] + logp.shape[2:])
    y.reshape(-1)[list(ignored)] = -100
    return y


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("spatial", [False, True], ids=["flat", "spatial"])
def test_nll_matches_torch_nllloss(dock, reduction, spatial):
    logp = log_probs(5, C, 2, 3) if spatial else log_probs(6, C)
    y = class_ids(logp)
    ref = F.nll_loss(t(logp), t(y), reduction=reduction).numpy()
    assert_close(run(dock, dock.NLL(reduction=reduction), logp, y), ref, f"NLL {reduction}")
    if reduction != "none":
        loss, grad = loss_and_grad(dock, dock.NLL(reduction=reduction), logp, y)
        ref_loss, ref_grad = torch_loss_and_grad(lambda a, b: F.nll_loss(a, b, reduction=reduction), logp, y)
        assert_close(loss, ref_loss, f"NLL {reduction} loss")
        assert_close(grad, ref_grad, f"NLL {reduction} gradient")


def test_nll_ignore_index_inside_the_classes(dock):
    logp = log_probs(8, C)
    y = RNG.integers(0, C, size=8)
    y[:3] = 1
    loss, grad = loss_and_grad(dock, dock.NLL(ignore_index=1), logp, y)
    ref_loss, ref_grad = torch_loss_and_grad(lambda a, b: F.nll_loss(a, b, ignore_index=1), logp, y)
    assert_close(loss, ref_loss, "NLL ignore_index=1")
    assert_close(grad, ref_grad, "NLL ignore_index=1 gradient")
    every = np.full(3, -100)
    assert np.isnan(run(dock, dock.NLL(), log_probs(3, C), every)), "every label left out: NaN, as torch"
    with pytest.raises(TypeError, match="NLL: ignore_index must be an integer"):
        dock.NLL(ignore_index=-100.0)


def test_nll_of_log_softmax_is_torch_cross_entropy(dock):
    class Net(dock.Craft):
        def __init__(self):
            super().__init__("NET")
            self.log_softmax, self.nll = dock.LogSoftmax(axis=1), dock.NLL()

        def run(self, x, y):
            return self.nll(self.log_softmax(x), y)

    x = data(6, C, 3, scale=3.0)
    y = class_ids(x, ignored=(2,))
    loss, grad = loss_and_grad(dock, Net(), x, y)
    ref_loss, ref_grad = torch_loss_and_grad(F.cross_entropy, x, y)
    assert_close(loss, ref_loss, "NLL(LogSoftmax(x))")
    assert_close(grad, ref_grad, "NLL(LogSoftmax(x)) gradient")
    assert_close(run(dock, dock.SftmXE(), x, y), ref_loss, "SftmXE on the same logits")


def test_nll_label_rule(dock, value_checks_on):
    logp = log_probs(5, C)
    y = RNG.integers(0, C, size=5)
    y[0], y[2] = -100, C
    with pytest.raises(ValueError) as caught:
        run(dock, dock.NLL(), logp, y)
    assert str(caught.value) == (
        f"NLL: label {C} at index 2 is not a class id in [0, {C}) ({C} classes) "
        "nor ignore_index -100; fix the labels, or set the labels to skip to -100"
    )
    with pytest.raises(TypeError, match="NLL: labels must be integer class ids, got dtype float32"):
        run(dock, dock.NLL(), logp, y.astype(np.float32))
    with pytest.raises(ValueError, match=r"NLL: integer labels must have shape \(5,\) for scores \(5, 4\)"):
        run(dock, dock.NLL(), logp, y[:4])


@pytest.mark.parametrize("name", ["SftmXE", "NLL"])
def test_bad_label_is_nan_where_it_sits_with_reduction_none(dock, value_checks_off, name):
    x = log_probs(5, C)
    y = RNG.integers(0, C, size=5)
    y[1], y[3] = -100, -1
    out = run(dock, getattr(dock, name)(reduction="none"), x, y)
    ref = F.nll_loss(t(x), t(np.where(y == -1, -100, y)), reduction="none").numpy()
    assert np.isnan(out[3]) and out[1] == 0.0, "the bad label's loss is NaN, an ignored one's 0"
    assert_close(np.delete(out, 3), np.delete(ref, 3), f"{name} none, other positions")
    assert np.isnan(run(dock, getattr(dock, name)(reduction="sum"), x, y))


# ------------------------------------------------------------------------------------------ reduction=...


def charbonnier(eps):
    def loss(a, b, reduction="mean"):
        per = torch.sqrt((a - b) ** 2 + eps)
        return {"mean": per.mean, "sum": per.sum, "none": lambda: per}[reduction]()

    return loss


POINTWISE = [
    ("MSE", lambda d, r: d.MSE(reduction=r), F.mse_loss),
    ("MAE", lambda d, r: d.MAE(reduction=r), F.l1_loss),
    ("Huber", lambda d, r: d.Huber(0.5, reduction=r), lambda a, b, **k: F.huber_loss(a, b, delta=0.5, **k)),
    ("Charbon", lambda d, r: d.Charbon(1e-3, reduction=r), charbonnier(1e-3)),
    ("SigmXE", lambda d, r: d.SigmXE(reduction=r), F.binary_cross_entropy_with_logits),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name, factory, reference", POINTWISE, ids=[p[0] for p in POINTWISE])
def test_pointwise_reductions_match_torch(dock, name, factory, reference, reduction):
    x, y = data(3, 4, 5, scale=2.0), RNG.uniform(size=(3, 4, 5)).astype(np.float32)
    x[0, 0, :2] = y[0, 0, :2]  # ties: MAE's gradient is 0 there
    ref = reference(t(x), t(y), reduction=reduction).detach().numpy()
    assert_close(run(dock, factory(dock, reduction), x, y), ref, f"{name} {reduction}", atol=1e-5)
    if reduction == "sum":
        loss, grad = loss_and_grad(dock, factory(dock, reduction), x, y)
        ref_loss, ref_grad = torch_loss_and_grad(lambda a, b: reference(a, b, reduction="sum"), x, y)
        assert_close(loss, ref_loss, f"{name} sum loss", atol=1e-4)
        assert_close(grad, ref_grad, f"{name} sum gradient")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sftmxe_reductions_match_torch(dock, reduction):
    x = data(4, C, 3, scale=3.0)
    hard = class_ids(x, ignored=(1, 5))
    soft = np.moveaxis(RNG.dirichlet(np.ones(C), size=(4, 3)), -1, 1).astype(np.float32)
    for labels, what in ((hard, "hard"), (soft, "soft")):
        ref = F.cross_entropy(t(x), t(labels), reduction=reduction).numpy()
        assert_close(run(dock, dock.SftmXE(reduction=reduction), x, labels), ref, f"SftmXE {what} {reduction}")
        if reduction == "sum":
            loss, grad = loss_and_grad(dock, dock.SftmXE(reduction="sum"), x, labels)
            ref_loss, ref_grad = torch_loss_and_grad(lambda a, b: F.cross_entropy(a, b, reduction="sum"), x, labels)
            assert_close(loss, ref_loss, f"SftmXE {what} sum loss", atol=1e-5)
            assert_close(grad, ref_grad, f"SftmXE {what} sum gradient")


def test_losses_return_float32_for_every_reduction(dock):
    x = data(2, 3).astype(np.float16)
    for reduction in REDUCTIONS:
        with dock.Nozzle():
            out = dock.MSE(reduction=reduction)(dock.coat(x), dock.coat(x))
        assert str(out.dtype).removeprefix("torch.") == "float32"
        assert out.ndim == (2 if reduction == "none" else 0)


LOSSES = {
    "MSE": lambda d, r: d.MSE(reduction=r),
    "MAE": lambda d, r: d.MAE(reduction=r),
    "Huber": lambda d, r: d.Huber(reduction=r),
    "Charbon": lambda d, r: d.Charbon(reduction=r),
    "SigmXE": lambda d, r: d.SigmXE(reduction=r),
    "BCE": lambda d, r: d.BCE(reduction=r),
    "SftmXE": lambda d, r: d.SftmXE(reduction=r),
    "NLL": lambda d, r: d.NLL(reduction=r),
}


@pytest.mark.parametrize("name", list(LOSSES))
def test_bad_reduction_is_a_value_error_naming_the_craft(dock, name):
    for bad in ("avg", "Mean", None):
        with pytest.raises(ValueError) as caught:
            LOSSES[name](dock, bad)
        assert str(caught.value) == f"{name}: reduction must be 'mean', 'sum' or 'none', got {bad!r}"
    assert LOSSES[name](dock, "sum").reduction == "sum"


def test_bce_runs_in_float32_under_mixp(dock):
    class Net(dock.Craft):
        def __init__(self):
            super().__init__("NET")
            self.fc, self.sigm, self.bce = dock.Dense(5, 3), dock.Sigm(), dock.BCE()

        def run(self, x, y):
            return self.bce(self.sigm(self.fc(x)), y)

    x, (_, y) = data(4, 5), probabilities(4, 3)
    net = Net()
    full = run(dock, net, x, y)
    low = net.mixp("bfloat16")
    with dock.Nozzle():
        out = low(dock.coat(x), dock.coat(y))  # torch's CUDA autocast refuses binary_cross_entropy: BCE leaves it
    assert str(out.dtype).removeprefix("torch.") == "float32"
    assert float(dock.shell(out)) == pytest.approx(float(full), rel=5e-2)


def test_sftmxe_integer_labels_of_the_wrong_shape_are_a_value_error(dock):
    with pytest.raises(ValueError, match=r"SftmXE: integer labels must have shape \(3, 2\) for scores \(3, 4, 2\)"):
        run(dock, dock.SftmXE(), data(3, C, 2), np.zeros((3,), np.int64))
