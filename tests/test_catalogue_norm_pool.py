"""Pooling's torch-style arguments (ceil_mode, an int kernel, stride defaulting to the kernel) and the norms'
settable affine initialisers (w_init / b_init, the DCGAN's N(1, 0.02) BN weights), on both engines.

References: torch.nn.MaxPool1d/2d/3d and AvgPool1d/2d/3d, and a NumPy brute force (checked against torch where
torch takes the padding itself) for the asymmetric padding torch does not take.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from tests import parity

T = torch.from_numpy


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def brute_pool(x, how, kernel, stride, pairs, ceil):
    """Pooling written out window by window: torch's output size rule, -inf / zero padding, the average over the
    window's part inside the padded input (count_include_pad)."""
    spatial = x.shape[2:]
    sizes = []
    for n, k, s, (a, b) in zip(spatial, kernel, stride, pairs):
        span = n + a + b - k
        m = (-(-span // s) if ceil else span // s) + 1
        if ceil and (m - 1) * s >= n + a:  # the last window must start inside the input or the leading padding
            m -= 1
        sizes.append(m)
    out = np.zeros(x.shape[:2] + tuple(sizes), np.float64)
    for index in itertools.product(*(range(m) for m in sizes)):
        lo = [i * s - a for i, s, (a, _) in zip(index, stride, pairs)]
        hi = [min(start + k, n + b) for start, k, n, (_, b) in zip(lo, kernel, spatial, pairs)]
        inside = tuple(slice(max(a, 0), min(b, n)) for a, b, n in zip(lo, hi, spatial))
        window = x[(slice(None), slice(None)) + inside].reshape(x.shape[:2] + (-1,))
        if how == "max":
            out[(...,) + index] = window.max(-1)
        else:
            out[(...,) + index] = window.sum(-1) / np.prod([b - a for a, b in zip(lo, hi)])
    return out.astype(np.float32)


NATIVE = [  # (id, kernel, stride, padding, spatial): torch takes this padding itself
    ("2d-drop-last", 2, 2, 1, (5, 5)),  # ceil would add a window starting in the trailing padding: dropped
    ("2d-overhang", (3, 3), 2, 0, (6, 7)),
    ("2d-nonsquare", (2, 3), (2, 2), (1, 1), (7, 6)),
    ("1d", (3,), 2, 1, (8,)),
    ("3d", (2, 2, 2), (2, 2, 2), 0, (3, 5, 4)),
]
MAX_REF = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
AVG_REF = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}


@pytest.mark.once
@pytest.mark.parametrize("case", NATIVE, ids=[c[0] for c in NATIVE])
@pytest.mark.parametrize("ceil", [False, True])
def test_pools_ceil_mode_matches_torch_nn(case, ceil):
    _, kernel, stride, padding, spatial = case
    x = rand(2, 3, *spatial)
    nd = len(spatial)
    for craft, ref in ((lambda d: d.MaxPool, MAX_REF[nd]), (lambda d: d.AvgPool, AVG_REF[nd])):
        out_t, out_j, _, _ = parity.outputs(lambda d: craft(d)(kernel, stride, padding, ceil_mode=ceil), x)
        expected = ref(kernel, stride, padding, ceil_mode=ceil)(T(x)).numpy()
        parity.assert_same(out_t, out_j, what=f"{ref.__name__} {case[0]} ceil={ceil}: torch vs jax")
        parity.assert_same(expected, out_t, what=f"{ref.__name__} {case[0]} ceil={ceil} vs torch.nn")
        pairs = [(p, p) for p in ((padding,) * nd if isinstance(padding, int) else padding)]
        steps = (stride,) * nd if isinstance(stride, int) else stride
        window = (kernel,) * nd if isinstance(kernel, int) else kernel
        how = "max" if ref is MAX_REF[nd] else "avg"
        brute = brute_pool(x, how, window, steps, pairs, ceil)
        parity.assert_same(brute, expected, what=f"the brute-force reference vs torch.nn ({case[0]}, {how})")
    if case[0] == "2d-drop-last" and ceil:
        assert out_t.shape[2:] == (3, 3)  # 4 without torch's rule


ASYMMETRIC = [  # (id, kernel, stride, F.pad-order padding, spatial, natural (before, after) pairs)
    ("after-only", (3, 3), 2, [0, 1, 0, 1], (6, 7), [(0, 1), (0, 1)]),
    ("before-only", (2, 2), 2, [1, 0, 1, 0], (5, 6), [(1, 0), (1, 0)]),
    ("wide", (3, 3), 2, 2, (5, 5), [(2, 2), (2, 2)]),  # more than half the kernel: padded beforehand on torch
    ("trailing-start", (2,), 3, [0, 2], (5,), [(0, 2)]),  # a ceil window would start in the trailing padding
]


@pytest.mark.once
@pytest.mark.parametrize("case", ASYMMETRIC, ids=[c[0] for c in ASYMMETRIC])
@pytest.mark.parametrize("ceil", [False, True])
def test_pools_ceil_mode_with_padding_torch_does_not_take(case, ceil):
    _, kernel, stride, padding, spatial, pairs = case
    x = rand(2, 2, *spatial, seed=1)
    steps = (stride,) * len(kernel)
    for name, how in (("MaxPool", "max"), ("AvgPool", "avg")):
        out_t, out_j, _, _ = parity.outputs(lambda d: getattr(d, name)(kernel, stride, padding, ceil_mode=ceil), x)
        parity.assert_same(out_t, out_j, what=f"{name} {case[0]} ceil={ceil}: torch vs jax")
        parity.assert_same(brute_pool(x, how, kernel, steps, pairs, ceil), out_t, what=f"{name} {case[0]} vs brute")
    if case[0] == "trailing-start":
        assert out_t.shape[-1] == 2  # ceil: 3 windows, the last starting at 6 >= 5 + 0 is dropped


@pytest.mark.once
def test_pools_take_an_int_kernel_and_stride_defaults_to_the_kernel():
    x = rand(2, 3, 7, 9, seed=2)
    cases = [
        (lambda d: d.MaxPool(2), nn.MaxPool2d(2)),
        (lambda d: d.AvgPool(3, 2), nn.AvgPool2d(3, 2)),
        (lambda d: d.MaxPool((3, 2)), nn.MaxPool2d((3, 2))),  # stride (3, 2), as torch
        (lambda d: d.AvgPool((2, 3), padding=1), nn.AvgPool2d((2, 3), padding=1)),
        (lambda d: d.MaxPool(3, 2, 1, True), nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
    ]
    for factory, ref in cases:
        out_t, out_j, craft_t, craft_j = parity.outputs(factory, x)
        parity.assert_same(out_t, out_j, what=f"{ref}: torch vs jax")
        parity.assert_same(ref(T(x)).numpy(), out_t, what=f"{ref} vs torch.nn")
    assert craft_t.kernel == craft_j.kernel == (3, 3) and craft_t.stride == craft_j.stride == (2, 2)
    for dock in parity.DOCKS:
        assert dock.MaxPool(4).stride == (4, 4) and dock.AvgPool((2, 3, 1)).stride == (2, 3, 1)
        assert dock.shell(dock.MaxPool(-1)(dock.coat(x))).shape == (2, 3, 1, 1)  # int -1: global 2-D


def test_pool_int_kernel_errors_name_the_kernel(dock):
    with pytest.raises(ValueError, match=r"MaxPool kernel sizes must be >= 1.*got \(0, 0\)"):
        dock.MaxPool(0)
    pool = dock.AvgPool(4, ceil_mode=True)
    with dock.Nozzle(), pytest.raises(ValueError, match=r"AvgPool: kernel \(4, 4\) is larger than the padded input"):
        pool(dock.coat(rand(1, 1, 3, 3)))


# --------------------------------------------------------------------------------------------- norm initialisers

AFFINE = [  # (id, factory(dock, **init), weight shape)
    ("BN", lambda d, **kw: d.BN(64, **kw), (64,)),
    ("IN", lambda d, **kw: d.IN(64, **kw), (64,)),
    ("LN", lambda d, **kw: d.LN((8, 8), **kw), (8, 8)),
    ("GN", lambda d, **kw: d.GN(64, 8, **kw), (64,)),
]


@pytest.mark.parametrize("case", AFFINE, ids=[c[0] for c in AFFINE])
def test_norm_weights_take_an_initialiser_and_default_to_ones_and_zeros(dock, case):
    name, factory, shape = case
    plain = factory(dock).export_weights()
    np.testing.assert_array_equal(plain["weight"], np.ones(shape, np.float32))
    np.testing.assert_array_equal(plain["bias"], np.zeros(shape, np.float32))
    w = parity.build(dock, lambda d: factory(d, w_init=d.Normal(1.0, 0.02), b_init=d.Uniform(-0.1, 0.1)))
    w = w.export_weights()
    assert w["weight"].shape == shape and w["weight"].dtype == np.float32
    assert abs(w["weight"].mean() - 1.0) < 0.01 and 0.01 < w["weight"].std() < 0.03, name
    assert np.abs(w["bias"]).max() <= 0.1 and w["bias"].std() > 0.01, name
    given = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    np.testing.assert_array_equal(factory(dock, w_init=given).export_weights()["weight"], given)
    with pytest.raises(ValueError, match=f"{name}: w_init / b_init need resilient=True"):
        factory(dock, resilient=False, w_init=dock.Normal(1.0, 0.02))


@pytest.mark.once
def test_dcgan_bn_weights_from_normal_1_002_are_the_same_on_both_engines_and_train_as_torch():
    factory = lambda d: d.BN(256, w_init=d.Normal(1.0, 0.02))  # noqa: E731 (the DCGAN example's weights_init)
    x = rand(4, 256, 3, 3, seed=3)
    out_t, out_j, craft_t, craft_j = parity.outputs(factory, x, train=True)
    w = craft_t.export_weights()
    parity.assert_same(w, craft_j.export_weights(), what="BN state after one train call")
    assert abs(w["weight"].mean() - 1.0) < 0.005 and abs(w["weight"].std() - 0.02) < 0.004
    ref = nn.BatchNorm2d(256, momentum=0.1)
    with torch.no_grad():
        ref.weight.copy_(T(w["weight"]))
    parity.assert_same(ref.train()(T(x)).detach().numpy(), out_t, what="BN(w_init=Normal(1, 0.02)) vs torch.nn")
    parity.assert_same(out_t, out_j, what="torch vs jax")
    parity.assert_same(ref.running_var.numpy(), w["running_var"], what="running_var vs torch.nn")
