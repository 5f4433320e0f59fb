"""Value and dtype seams between the engines, pinned on the bound engine (so on both across the passes).

- Class labels (SftmXE, AccCls): `ignore_index` (default -100) is left out as torch's cross_entropy
  leaves it out; any other label outside [0, C) raises the shared ValueError with value checks on and
  gives NaN with them off, at top level and inside a compiled training step.
- Integer inputs to Dense / Conv / TransConv: the same TypeError on both engines.
- MAE's gradient at ties is 0 (torch's sign(0) = 0); a kernel larger than the padded input (Conv,
  MaxPool, AvgPool) is the same ValueError on both engines.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nebulae.astro import checks

RNG = np.random.default_rng(11)
C = 4


def logits(*shape):
    return RNG.normal(size=shape).astype(np.float32)


@pytest.fixture(params=[False, True], ids=["checks-off", "checks-on"])
def value_checks(request):
    """Value checks off / on for one test; the process setting is restored afterwards."""
    saved = checks._enabled
    checks.enable(request.param)
    yield request.param
    checks._enabled = saved


@pytest.fixture
def checks_on():
    saved = checks._enabled
    checks.enable(True)
    yield
    checks._enabled = saved


@pytest.fixture
def checks_off():
    saved = checks._enabled
    checks.enable(False)
    yield
    checks._enabled = saved


def loss_and_grad(dock, craft, x, y):
    """(loss, d loss / d x) of `craft(x, y)` as NumPy, through Prober."""
    with dock.Prober(wrt=(0,)) as pb:
        loss = craft(dock.coat(x), dock.coat(y))
    return float(dock.shell(loss)), dock.shell(pb.grads["inputs"][0])


def torch_loss_and_grad(x, y, **kw):
    xt = torch.from_numpy(x).requires_grad_(True)
    loss = F.cross_entropy(xt, torch.from_numpy(y).long(), **kw)
    loss.backward()
    return loss.item(), xt.grad.numpy()


# ------------------------------------------------------------------------------------- labels: ignore_index


@pytest.mark.parametrize("spatial", [False, True], ids=["flat", "spatial"])
def test_sftmxe_leaves_out_ignore_index_like_torch(dock, value_checks, spatial):
    x = logits(6, C, 2, 3) if spatial else logits(6, C)
    y = RNG.integers(0, C, size=x.shape[:1] + x.shape[2:])
    y.reshape(-1)[[0, 3, 4]] = -100
    loss, grad = loss_and_grad(dock, dock.SftmXE(), x, y)
    ref_loss, ref_grad = torch_loss_and_grad(x, y, ignore_index=-100)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-7)


def test_sftmxe_all_ignored_is_nan_with_zero_gradient_like_torch(dock, value_checks):
    x, y = logits(3, C), np.full(3, -100, np.int64)
    loss, grad = loss_and_grad(dock, dock.SftmXE(), x, y)
    ref_loss, ref_grad = torch_loss_and_grad(x, y)
    assert np.isnan(loss) and np.isnan(ref_loss)
    np.testing.assert_array_equal(grad, ref_grad)


def test_sftmxe_ignore_index_argument_inside_the_classes(dock, value_checks):
    x, y = logits(8, C), RNG.integers(0, C, size=8)
    y[:3] = 0
    loss, grad = loss_and_grad(dock, dock.SftmXE(ignore_index=0), x, y)
    ref_loss, ref_grad = torch_loss_and_grad(x, y, ignore_index=0)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-7)
    with pytest.raises(TypeError, match="SftmXE: ignore_index must be an integer"):
        dock.SftmXE(ignore_index=-100.0)


# ---------------------------------------------------------------------------------- labels: out of range


@pytest.mark.parametrize("bad", [-1, C, -7], ids=["minus-one", "C", "minus-seven"])
def test_sftmxe_out_of_range_label_is_nan_with_checks_off(dock, checks_off, bad):
    x, y = logits(5, C), RNG.integers(0, C, size=5)
    y[2], y[4] = bad, -100
    loss, grad = loss_and_grad(dock, dock.SftmXE(), x, y)
    assert np.isnan(loss)
    valid = (y >= 0) & (y < C)
    assert np.isnan(grad[valid]).all(), "the gradient is NaN too: no silent update from a wrong label"


def label_error(craft, label, index, shape=None, nclass=C, ignore=-100):
    where = f"at index {index}" if shape is None else f"at flat index {index} of the labels {shape}"
    return (
        f"{craft}: label {label} {where} is not a class id in [0, {nclass}) ({nclass} classes) "
        f"nor ignore_index {ignore}; fix the labels, or set the labels to skip to {ignore}"
    )


@pytest.mark.parametrize("bad", [-1, C], ids=["minus-one", "C"])
def test_sftmxe_out_of_range_label_raises_with_checks_on(dock, checks_on, bad):
    x, y = logits(5, C), RNG.integers(0, C, size=5)
    y[0], y[2], y[3] = -100, bad, C + 5
    with pytest.raises(ValueError) as caught:
        loss_and_grad(dock, dock.SftmXE(), x, y)
    assert str(caught.value) == label_error("SftmXE", bad, 2)
    xs, ys = logits(2, C, 2, 2), np.zeros((2, 2, 2), np.int64)
    ys[1, 0, 1] = bad
    with pytest.raises(ValueError) as caught:
        loss_and_grad(dock, dock.SftmXE(), xs, ys)
    assert str(caught.value) == label_error("SftmXE", bad, 5, shape=(2, 2, 2))


def train_step(dock):
    class Train(dock.Craft):
        def __init__(self):
            super().__init__("TRAIN")
            self.net, self.loss = dock.Dense(3, C), dock.SftmXE()
            self.optz = dock.Adam(self.net, lr=1e-2)

        def run(self, x, z):
            with dock.Rudder() as rd:
                self.net.gear(rd)
                loss = self.loss(self.net(x), z)
                self.optz(loss)
            return loss

    return Train()


def test_labels_inside_a_training_step(dock, value_checks):
    train = train_step(dock)
    x = logits(6, 3)
    y = np.array([0, 1, -100, 3, 2, -100])
    w = {k: torch.from_numpy(v) for k, v in train.net.export_weights().items()}
    ref = F.cross_entropy(torch.from_numpy(x) @ w["weight"].T + w["bias"], torch.from_numpy(y)).item()
    np.testing.assert_allclose(float(dock.shell(train(dock.coat(x), dock.coat(y)))), ref, rtol=1e-5)
    y[1] = -1
    if value_checks:
        with pytest.raises(ValueError) as caught:
            train(dock.coat(x), dock.coat(y))
        assert str(caught.value) == label_error("SftmXE", -1, 1)
    else:
        assert np.isnan(float(dock.shell(train(dock.coat(x), dock.coat(y)))))


# ------------------------------------------------------------------------------------------- labels: AccCls


def accuracy(dock, craft, x, y):
    with dock.Nozzle():
        return float(dock.shell(craft(dock.coat(x), dock.coat(y))))


def test_acccls_leaves_out_ignore_index(dock, value_checks):
    x = logits(10, C, 3)
    y = RNG.integers(0, C, size=(10, 3))
    y[:5] = x[:5].argmax(1)
    y[4:7] = -100
    keep = y != -100
    expected = float(((x.argmax(1) == y) & keep).sum() / keep.sum())
    assert expected != float(np.mean(x.argmax(1) == y)), "ignored labels must change the plain mean"
    assert accuracy(dock, dock.AccCls(), x, y) == pytest.approx(expected, rel=1e-6)
    y[:] = 1
    assert np.isnan(accuracy(dock, dock.AccCls(ignore_index=1), x, y)), "every label left out: NaN"


def test_acccls_out_of_range_label(dock, value_checks):
    x, y = logits(6, C), RNG.integers(0, C, size=6)
    y[3] = C
    if value_checks:
        with pytest.raises(ValueError) as caught:
            accuracy(dock, dock.AccCls(), x, y)
        assert str(caught.value) == label_error("AccCls", C, 3)
    else:
        assert np.isnan(accuracy(dock, dock.AccCls(), x, y))


# -------------------------------------------------------------------------------------------- integer images


def dtype_error(craft, dtype):
    return (
        f"{craft} needs a floating-point input, got dtype {dtype}: cast to float first, "
        "e.g. x.astype('float32') / 255, or End()/Whiten() in the Comburant"
    )


FLOAT_CRAFTS = [
    ("Dense", lambda d: d.Dense(6, 3), (2, 6)),
    ("Conv", lambda d: d.Conv(2, 3, (3, 3), padding=1), (2, 2, 5, 5)),
    ("TransConv", lambda d: d.TransConv(2, 3, (3, 3), stride=2), (2, 2, 4, 4)),
    ("PRelu", lambda d: d.PRelu(), (2, 6)),
]


@pytest.mark.parametrize("name", ["RNN", "LSTM"])
def test_recurrent_crafts_refuse_integer_inputs(dock, name):
    craft = getattr(dock, name)(6, 3)
    x = RNG.integers(1, 255, size=(2, 4, 6)).astype("uint8")
    with dock.Nozzle(), pytest.raises(TypeError) as caught:
        craft(dock.coat(x))
    assert str(caught.value) == dtype_error(name, "uint8")


@pytest.mark.parametrize("name, factory, shape", FLOAT_CRAFTS, ids=[c[0] for c in FLOAT_CRAFTS])
@pytest.mark.parametrize("dtype", ["uint8", "int32"])
def test_float_crafts_refuse_integer_inputs(dock, name, factory, shape, dtype):
    craft = factory(dock)
    x = RNG.integers(1, 255, size=shape).astype(dtype)
    with dock.Nozzle(), pytest.raises(TypeError) as caught:
        craft(dock.coat(x))
    assert str(caught.value) == dtype_error(name, dtype)
    with dock.Nozzle():
        y = dock.shell(craft(dock.coat(x.astype(np.float32) / 255)))
    assert np.isfinite(y).all() and np.abs(y).max() > 0


@pytest.mark.parametrize("name, factory, shape", FLOAT_CRAFTS, ids=[c[0] for c in FLOAT_CRAFTS])
def test_float_crafts_still_run_under_mixp(dock, name, factory, shape):
    x = dock.coat(logits(*shape))
    craft = factory(dock)
    with dock.Nozzle():
        full = craft(x)
        target = dock.coat(np.zeros(np.shape(dock.shell(full)), np.float32))
        expected = float(dock.shell(dock.MSE()(full, target)))
        low = craft.mixp("bfloat16")(x)
        assert str(low.dtype).removeprefix("torch.") == "bfloat16"
        assert float(dock.shell(dock.MSE()(low, target))) == pytest.approx(expected, rel=5e-2)


# ------------------------------------------------------------------------------------------------ MAE ties


@pytest.mark.parametrize(
    "name, factory, reference",
    [
        ("MAE", lambda d: d.MAE(), F.l1_loss),
        ("Huber", lambda d: d.Huber(0.5), lambda a, b: F.huber_loss(a, b, delta=0.5)),
    ],
    ids=["MAE", "Huber"],
)
def test_gradient_at_exact_ties_matches_torch(dock, name, factory, reference):
    y = logits(3, 4)
    x = y.copy()
    x[0] += 1.5
    x[1, :2] -= 0.25  # rows 1 (half) and 2 (all) tie exactly
    _, grad = loss_and_grad(dock, factory(dock), x, y)
    xt = torch.from_numpy(x).requires_grad_(True)
    reference(xt, torch.from_numpy(y)).backward()
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-6, atol=0)
    assert (grad[2] == 0).all() and (grad[0] != 0).all()


# -------------------------------------------------------------------------------- kernels larger than input


CONV_FIX = "use a smaller kernel or dilation, more padding, or a larger input"
POOL_FIX = "use a smaller kernel, more padding, or a larger input"
WINDOWS = [
    (
        "Conv",
        lambda d: d.Conv(1, 1, (3, 3)),
        (1, 1, 2, 5),
        "Conv: kernel (3, 3) with dilation (1, 1) (span (3, 3)) is larger than the padded input "
        f"(input (2, 5), padding ((0, 0), (0, 0)), padded size (2, 5)); {CONV_FIX}",
    ),
    (
        "Conv dilated",
        lambda d: d.Conv(1, 1, (3,), padding=1, dilation=3),
        (1, 1, 4),
        "Conv: kernel (3,) with dilation (3,) (span (7,)) is larger than the padded input "
        f"(input (4,), padding ((1, 1),), padded size (6,)); {CONV_FIX}",
    ),
    (
        "MaxPool",
        lambda d: d.MaxPool((5, 3), padding=1),
        (1, 2, 2, 4),
        "MaxPool: kernel (5, 3) is larger than the padded input "
        f"(input (2, 4), padding ((1, 1), (1, 1)), padded size (4, 6)); {POOL_FIX}",
    ),
    (
        "AvgPool",
        lambda d: d.AvgPool((4, 2)),
        (1, 2, 3, 3),
        "AvgPool: kernel (4, 2) is larger than the padded input "
        f"(input (3, 3), padding ((0, 0), (0, 0)), padded size (3, 3)); {POOL_FIX}",
    ),
]


@pytest.mark.parametrize("name, factory, shape, message", WINDOWS, ids=[w[0] for w in WINDOWS])
def test_kernel_larger_than_padded_input(dock, name, factory, shape, message):
    craft = factory(dock)
    with dock.Nozzle(), pytest.raises(ValueError) as caught:
        craft(dock.coat(np.ones(shape, np.float32)))
    assert str(caught.value) == message


def test_kernel_equal_to_padded_input_still_runs(dock):
    with dock.Nozzle():
        conv = dock.shell(dock.Conv(1, 2, (3,), padding=1, dilation=3)(dock.coat(np.ones((2, 1, 5), np.float32))))
        pool = dock.shell(dock.MaxPool((3, 3), padding=1)(dock.coat(np.ones((1, 2, 1, 1), np.float32))))
    assert conv.shape == (2, 2, 1) and pool.shape == (1, 2, 1, 1)
