"""Conv, TransConv and autoPad: torch vs JAX parity, the torch side against torch.nn.functional, padding
conventions (int, per dimension, F.pad order incl. asymmetric), fixed kernels, gradients and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nebulae.astro.padding import autoPad
from tests import parity

pytestmark = pytest.mark.once

T = torch.from_numpy
CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TRANS = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def fpad(pairs):
    """[(before, after)] in natural order -> F.pad order."""
    return [p for pair in reversed(pairs) for p in pair]


def both_raise(error, match, factory, *inputs):
    """The same bad construction or call raises `error` (message matching `match`) on both engines."""
    for dock in parity.DOCKS:
        with pytest.raises(error, match=match):
            craft = factory(dock)
            if inputs:
                craft(*[dock.coat(a) for a in inputs])


def probe_grads(factory, *inputs):
    """Gradients of sum(w * craft(*inputs)) w.r.t. every input and parameter, on (torch, jax)."""
    results = []
    for dock in parity.DOCKS:
        inner = parity.build(dock, factory)

        class Probe(dock.Craft):
            def __init__(self):
                super().__init__("PROBE")
                self.inner = inner

            def run(self, w, *args):
                return (self.inner(*args) * w).sum()

        args = [dock.coat(a) for a in inputs]
        with dock.Nozzle():
            w = dock.coat(rand(*np.shape(dock.shell(inner(*args))), seed=9))
        with dock.Prober(wrt=tuple(range(1, len(inputs) + 1))) as pb:
            Probe()(w, *args)
        results.append(dock.shell({"inputs": pb.grads["inputs"], "params": pb.grads["params"]}))
    parity.assert_same(results[0], results[1], 1e-5, 1e-5, "gradients: torch vs jax")
    assert any(np.abs(g).max() > 0 for g in results[0]["params"].values())
    return results


# ------------------------------------------------------------------------------------------------------ Conv

CONVS = [
    # (id, in_chs, out_chs, kernel, stride, padding, dilation, group, spatial input, natural (before, after) pairs)
    ("1d-int-pad-stride2", 2, 3, (3,), 2, 1, 1, 1, (9,), [(1, 1)]),
    ("2d-nonsquare-perdim", 4, 6, (3, 5), (1, 2), [1, 2], (2, 1), 2, (7, 9), [(1, 1), (2, 2)]),
    ("2d-asymmetric-fpad", 3, 4, (3, 3), 2, [0, 1, 2, 0], 1, 1, (6, 7), [(2, 0), (0, 1)]),
    ("2d-dilated-int", 2, 2, (3, 3), 1, 2, 2, 1, (6, 6), [(2, 2), (2, 2)]),
    ("2d-depthwise", 4, 4, (3, 3), 1, [1, 1, 1, 1], 1, 4, (5, 5), [(1, 1), (1, 1)]),
    ("3d-groups-stride", 6, 6, (2, 3, 3), 2, 1, 1, 3, (4, 5, 6), [(1, 1)] * 3),
    ("3d-asymmetric", 2, 3, (3, 2, 3), 1, [1, 0, 0, 1, 2, 1], 1, 1, (4, 4, 5), [(2, 1), (0, 1), (1, 0)]),
]


@pytest.mark.parametrize("case", CONVS, ids=[c[0] for c in CONVS])
def test_conv_matches_torch_functional_and_jax(case):
    _, cin, cout, kernel, stride, padding, dilation, group, spatial, pairs = case
    x = rand(2, cin, *spatial)
    out_t, out_j, craft_t, _ = parity.outputs(
        lambda d: d.Conv(cin, cout, kernel, stride, padding, dilation, group, b_init=d.Normal()), x
    )
    parity.assert_same(out_t, out_j, what="Conv torch vs jax")
    w = craft_t.export_weights()
    assert w["weight"].shape == (cout, cin // group, *kernel)
    ref = CONV[len(kernel)](F.pad(T(x), fpad(pairs)), T(w["weight"]), T(w["bias"]), stride, 0, dilation, group)
    parity.assert_same(ref.numpy(), out_t, what="Conv vs F.pad + F.convNd")


def test_conv_gradients_match():
    probe_grads(lambda d: d.Conv(2, 4, (3, 2), 2, [0, 1, 1, 0], 1, 2, b_init=d.Normal()), rand(2, 2, 5, 6))


def test_conv_fixed_kernel_is_a_constant_not_exported():
    kernel = rand(3, 2, 3, 3, seed=4)
    x = rand(2, 2, 6, 5)
    out_t, out_j, craft_t, craft_j = parity.outputs(lambda d: d.Conv(2, 3, (3, 3), 1, 1, w_init=kernel), x)
    parity.assert_same(out_t, out_j, what="fixed-kernel Conv torch vs jax")
    ref = F.conv2d(T(x), T(kernel), torch.zeros(3), 1, 1)
    parity.assert_same(ref.numpy(), out_t, what="fixed-kernel Conv vs F.conv2d")
    for craft in (craft_t, craft_j):
        assert sorted(craft.export_weights()) == ["bias"]
        assert [tuple(np.shape(v)) for v in craft.vars()] == [(3,)]  # only the bias trains


def test_conv_without_bias():
    x = rand(1, 2, 5, 5)
    out_t, out_j, craft_t, craft_j = parity.outputs(lambda d: d.Conv(2, 3, (3, 3), b_init=d.Void()), x)
    parity.assert_same(out_t, out_j, what="bias-free Conv")
    assert sorted(craft_t.export_weights()) == sorted(craft_j.export_weights()) == ["weight"]
    parity.assert_same(F.conv2d(T(x), T(craft_t.export_weights()["weight"])).numpy(), out_t, what="vs F.conv2d")


def test_conv_bad_arguments_raise_clearly():
    both_raise(ValueError, "1-, 2- and 3-D", lambda d: d.Conv(2, 2, (3, 3, 3, 3)))
    both_raise(ValueError, "divide by group", lambda d: d.Conv(3, 4, (3, 3), group=2))
    both_raise(ValueError, "padding needs", lambda d: d.Conv(2, 2, (3, 3), padding=[1, 1, 1]))
    both_raise(ValueError, "stride needs", lambda d: d.Conv(2, 2, (3, 3), stride=(1, 2, 3)))


# --------------------------------------------------------------------------------------------------- autoPad


def test_autopad_values_in_fpad_order():
    # the original's verified values where they are right (its short symmetric form expanded to 2·dim)
    assert autoPad(None, (3, 3)) == [1, 1, 1, 1]
    assert autoPad(None, (3, 3), 2) == [0, 1, 0, 1]
    assert autoPad((224, 224), (7, 7), 2) == [2, 3, 2, 3]
    assert autoPad((33, 33), (3, 3), 2) == [1, 1, 1, 1]
    assert autoPad(None, (3, 3), 1, 2) == [2, 2, 2, 2]
    # fixed: non-square kernels list the last dimension first (the original gave [2, 1]), no negative pads
    assert autoPad(None, (3, 5)) == [2, 2, 1, 1]
    assert autoPad(None, (1, 1), 2) == [0, 0, 0, 0]
    assert autoPad(None, (3, 5, 7)) == [3, 3, 2, 2, 1, 1]


@pytest.mark.parametrize("kernel", [(3, 5), (5, 2), (1, 4)])
def test_autopad_keeps_size_at_stride_one_for_non_square_kernels(kernel):
    x = rand(1, 2, 10, 10)
    out_t, out_j, _, _ = parity.outputs(lambda d: d.Conv(2, 3, kernel, padding=d.autoPad(None, kernel)), x)
    assert out_t.shape == out_j.shape == (1, 3, 10, 10)
    parity.assert_same(out_t, out_j, what=f"SAME Conv {kernel}")


def test_autopad_with_size_gives_tf_same_output():
    for n in range(5, 14):
        for k, s, d in [(3, 2, 1), (4, 3, 1), (3, 2, 2), (7, 2, 1)]:
            pad = autoPad((n, n + 1), (k, k), s, d)
            for size, (before, after) in zip((n, n + 1), [pad[2:], pad[:2]]):
                out = (size + before + after - d * (k - 1) - 1) // s + 1
                assert out == math.ceil(size / s), (n, k, s, d, pad)
                assert after - before in (0, 1)
    x = rand(1, 1, 9, 10)
    pad = autoPad((9, 10), (3, 3), 2)
    out_t, out_j, _, _ = parity.outputs(lambda d: d.Conv(1, 2, (3, 3), 2, pad), x)
    assert out_t.shape == out_j.shape == (1, 2, 5, 5)
    parity.assert_same(out_t, out_j, what="TF-SAME Conv")


# ------------------------------------------------------------------------------------------------- TransConv

TRANSCONVS = [
    # (id, in_chs, out_chs, out_size, kernel, stride, padding, dilation, group, spatial input)
    ("2d-same-stride2", 4, 3, (10, 10), (3, 3), 2, 1, 1, 1, (5, 5)),
    ("2d-nominal", 3, 2, None, (3, 2), (2, 3), [1, 0], 1, 1, (4, 3)),
    ("1d-dilated", 2, 4, (11,), (3,), 2, 1, 2, 2, (5,)),
    ("3d-groups", 4, 6, (7, 8, 5), (2, 3, 3), 2, [1, 1, 1], 1, 2, (4, 4, 3)),
]


@pytest.mark.parametrize("case", TRANSCONVS, ids=[c[0] for c in TRANSCONVS])
def test_transconv_matches_torch_functional_and_jax(case):
    _, cin, cout, out_size, kernel, stride, padding, dilation, group, spatial = case
    x = rand(2, cin, *spatial)
    out_t, out_j, craft_t, _ = parity.outputs(
        lambda d: d.TransConv(
            cin, cout, kernel, stride, padding, dilation, group, out_size=out_size, b_init=d.Normal()
        ),
        x,
    )
    parity.assert_same(out_t, out_j, what="TransConv torch vs jax")
    w = craft_t.export_weights()
    assert w["weight"].shape == (cin, cout // group, *kernel)  # torch's ConvTransposeNd layout
    nd = len(kernel)
    pads = [padding] * nd if isinstance(padding, int) else padding
    stride_t = (stride,) * nd if isinstance(stride, int) else stride
    nominal = [(n - 1) * s + dilation * (k - 1) + 1 - 2 * p for n, s, k, p in zip(spatial, stride_t, kernel, pads)]
    extra = [0] * nd if out_size is None else [m - n for m, n in zip(out_size, nominal)]
    ref = TRANS[nd](T(x), T(w["weight"]), T(w["bias"]), stride, pads, extra, group, dilation)
    assert tuple(ref.shape[2:]) == (tuple(out_size) if out_size else tuple(nominal))
    parity.assert_same(ref.numpy(), out_t, what="TransConv vs F.conv_transposeNd")


def test_transconv_output_size_as_torch_module():
    x = rand(1, 3, 4, 5)
    out_t, out_j, craft_t, _ = parity.outputs(lambda d: d.TransConv(3, 2, (3, 3), 2, 1, out_size=(8, 10)), x)
    parity.assert_same(out_t, out_j, what="TransConv out_size")
    module = torch.nn.ConvTranspose2d(3, 2, (3, 3), 2, 1)
    module.load_state_dict({k: T(v) for k, v in craft_t.export_weights().items()})
    with torch.no_grad():
        parity.assert_same(module(T(x), output_size=(8, 10)).numpy(), out_t, what="vs nn.ConvTranspose2d(output_size)")


def test_transconv_asymmetric_padding_is_the_adjoint_of_conv():
    # TransConv(padding=P, out_size=n) is the transpose of Conv(padding=P) on an n-sized input: <Cx, y> = <x, C'y>
    kernel = rand(3, 2, 3, 4, seed=5)  # Conv layout (out, in, kh, kw) = TransConv layout (in', out', kh, kw)
    x, pad = rand(2, 2, 7, 8, seed=1), autoPad(None, (3, 4), 2)
    assert pad == [1, 1, 0, 1]  # asymmetric along H
    cx, _, _, _ = parity.outputs(lambda d: d.Conv(2, 3, (3, 4), 2, pad, w_init=kernel, b_init=d.Void()), x)
    y = rand(*cx.shape, seed=2)
    ty, ty_j, _, _ = parity.outputs(
        lambda d: d.TransConv(3, 2, (3, 4), 2, pad, out_size=(7, 8), w_init=kernel, b_init=d.Void()), y
    )
    parity.assert_same(ty, ty_j, what="asymmetric TransConv torch vs jax")
    assert ty.shape == x.shape
    assert np.sum(cx * y) == pytest.approx(np.sum(x * ty), rel=1e-5)
    # and the full transposed convolution cropped by (before, after) per dimension
    full = F.conv_transpose2d(T(y), T(kernel), None, 2).numpy()
    (top, _), (left, _) = [(pad[2], pad[3]), (pad[0], pad[1])]
    ref = np.zeros_like(ty)
    crop = full[:, :, top : top + 7, left : left + 8]
    ref[:, :, : crop.shape[2], : crop.shape[3]] = crop
    parity.assert_same(ref, ty, what="asymmetric TransConv vs cropped full transposed conv")


def test_transconv_fixed_kernel_and_gradients():
    kernel = rand(2, 3, 3, 3, seed=3)
    out_t, out_j, craft_t, craft_j = parity.outputs(
        lambda d: d.TransConv(2, 3, (3, 3), 2, w_init=kernel), rand(1, 2, 3, 4)
    )
    parity.assert_same(out_t, out_j, what="fixed-kernel TransConv")
    assert sorted(craft_t.export_weights()) == sorted(craft_j.export_weights()) == ["bias"]
    probe_grads(
        lambda d: d.TransConv(4, 2, (3, 2), 2, [0, 1, 1, 0], 1, 2, out_size=(9, 8), b_init=d.Normal()),
        rand(2, 4, 4, 4),
    )


def test_transconv_bad_arguments_raise_clearly():
    both_raise(ValueError, "1-, 2- and 3-D", lambda d: d.TransConv(2, 2, (3, 3, 3, 3)))
    both_raise(ValueError, "divide by group", lambda d: d.TransConv(3, 4, (3, 3), group=2))
    both_raise(ValueError, "must be >= 0", lambda d: d.TransConv(2, 2, (3, 3), padding=-1))
    both_raise(
        ValueError,
        r"must be in \[9, 10\]",
        lambda d: d.TransConv(2, 2, (3, 3), 2, 1, out_size=(12, 9)),
        rand(1, 2, 5, 5),
    )
