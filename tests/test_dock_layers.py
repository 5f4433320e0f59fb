"""Embed, Pad, Identity, MaxPool / AvgPool and the graph convolutions: torch vs JAX parity, the torch side
against torch.nn.functional (or NumPy formulas), constants kept out of training and export, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from jax.experimental import sparse

from tests import parity

pytestmark = pytest.mark.once

T = torch.from_numpy
TDOCK, JDOCK = parity.DOCKS


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def both_raise(error, match, factory, *inputs):
    """The same bad construction or call raises `error` (message matching `match`) on both engines."""
    for dock in parity.DOCKS:
        with pytest.raises(error, match=match):
            craft = factory(dock)
            if inputs:
                craft(*[dock.coat(a) for a in inputs])


def check(factory, *inputs, ref=None, what=""):
    """Parity at 1e-5 and, when given, the torch side against a reference; returns the torch output."""
    out_t, out_j, _, _ = parity.outputs(factory, *inputs)
    parity.assert_same(out_t, out_j, what=f"{what}: torch vs jax")
    if ref is not None:
        parity.assert_same(np.asarray(ref), out_t, what=f"{what}: torch vs reference")
    return out_t


# ----------------------------------------------------------------------------------------------------- Embed


def test_embed_matches_torch_embedding():
    idx = np.array([[0, 3, 5], [5, 1, 0]], np.int64)
    out_t, out_j, craft_t, craft_j = parity.outputs(lambda d: d.Embed(6, 4), idx)
    parity.assert_same(out_t, out_j, what="Embed torch vs jax")
    w = craft_t.export_weights()
    assert sorted(w) == sorted(craft_j.export_weights()) == ["weight"] and w["weight"].shape == (6, 4)
    module = torch.nn.Embedding(6, 4)
    module.load_state_dict({"weight": T(w["weight"])})
    with torch.no_grad():
        parity.assert_same(module(T(idx)).numpy(), out_t, what="Embed vs nn.Embedding")
    big = parity.build(TDOCK, lambda d: d.Embed(100, 50)).export_weights()["weight"]
    assert abs(big.mean()) < 0.05 and abs(big.std() - 1.0) < 0.05  # N(0, 1) as torch's


def test_embed_rejects_bad_indices():
    emb_t, emb_j = (parity.build(d, lambda d: d.Embed(4, 2)) for d in parity.DOCKS)
    with pytest.raises(IndexError):
        emb_t(TDOCK.coat(np.array([4])))
    # a compiled JAX step cannot raise on values: out-of-range rows are NaN, never another token's row
    out = JDOCK.shell(emb_j(JDOCK.coat(np.array([4, -1, 3]))))
    assert np.isnan(out[:2]).all() and np.isfinite(out[2]).all()
    with pytest.raises(TypeError, match="integer indices"):
        emb_j(JDOCK.coat(np.array([0.0, 1.0], np.float32)))


# ------------------------------------------------------------------------------------------- Pad, Identity

PADS = [
    ("constant-2d", [1, 2, 0, 1], "CONSTANT", 0.5, (2, 3, 4, 5)),
    ("constant-crop", [-1, 2, 1, -2], "constant", 0.0, (1, 2, 5, 5)),
    ("reflect-2d", [2, 1, 1, 3], "REFLECT", 0.0, (2, 2, 5, 6)),
    ("reflect-1d", [1, 3], "reflect", 0.0, (2, 3, 5)),
    ("replicate-3d", [1, 0, 2, 1, 0, 2], "BORDER", 0.0, (1, 2, 3, 4, 5)),
    ("replicate-str", [0, 2], "replicate", 0.0, (2, 3, 4)),
    ("int-all-spatial", 1, "CONSTANT", -1.0, (1, 2, 3, 4)),
]


@pytest.mark.parametrize("case", PADS, ids=[p[0] for p in PADS])
def test_pad_matches_f_pad(case):
    _, padding, mode, value, shape = case
    x = rand(*shape)
    mode_arg = getattr(TDOCK, mode) if mode.isupper() else mode
    torch_mode = {"CONSTANT": "constant", "REFLECT": "reflect", "BORDER": "replicate"}.get(mode, mode)
    pads = padding if isinstance(padding, list) else [padding] * 2 * (len(shape) - 2)
    ref = F.pad(T(x), pads, torch_mode, value) if torch_mode == "constant" else F.pad(T(x), pads, torch_mode)
    check(lambda d: d.Pad(padding, mode_arg, value), x, ref=ref.numpy(), what=f"Pad {case[0]}")


def test_pad_constants_and_identity():
    for dock in parity.DOCKS:
        assert (dock.CONSTANT, dock.REFLECT, dock.BORDER) == (10, 11, 12)
    x = rand(2, 3, 4)
    check(lambda d: d.Identity(), x, ref=x, what="Identity")


def test_pad_bad_arguments_raise_clearly():
    both_raise(ValueError, "padding mode", lambda d: d.Pad([1, 1], "circular"))
    both_raise(ValueError, "padding mode", lambda d: d.Pad([1, 1], 13))
    both_raise(ValueError, "even-length", lambda d: d.Pad([1, 1, 1]))
    with pytest.raises(RuntimeError, match="less than"):
        parity.build(TDOCK, lambda d: d.Pad([3, 0], "reflect"))(TDOCK.coat(rand(1, 1, 3)))
    with pytest.raises(ValueError, match="smaller than"):
        parity.build(JDOCK, lambda d: d.Pad([3, 0], "reflect"))(JDOCK.coat(rand(1, 1, 3)))


# ----------------------------------------------------------------------------------------------------- pools

POOLS = [
    # (id, kernel, stride, padding, spatial, natural (before, after) pairs)
    ("1d-native", (3,), 2, 1, (9,), [(1, 1)]),
    ("2d-nonsquare-stride", (2, 3), (1, 2), 0, (5, 7), [(0, 0), (0, 0)]),
    ("2d-asymmetric-fpad", (3, 3), 2, [0, 1, 1, 0], (6, 7), [(1, 0), (0, 1)]),
    ("2d-wide-pad", (3, 3), 1, 2, (4, 5), [(2, 2), (2, 2)]),
    ("3d-perdim", (2, 2, 3), 2, [1, 0, 1], (4, 5, 6), [(1, 1), (0, 0), (1, 1)]),
]
MAXF = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVGF = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


@pytest.mark.parametrize("case", POOLS, ids=[p[0] for p in POOLS])
def test_pools_match_f_pool(case):
    _, kernel, stride, padding, spatial, pairs = case
    x = rand(2, 3, *spatial)
    nd, fpad = len(kernel), [p for pair in reversed(pairs) for p in pair]
    ref = MAXF[nd](F.pad(T(x), fpad, value=float("-inf")), kernel, stride)
    check(lambda d: d.MaxPool(kernel, stride, padding), x, ref=ref.numpy(), what=f"MaxPool {case[0]}")
    ref = AVGF[nd](F.pad(T(x), fpad), kernel, stride)
    out = check(lambda d: d.AvgPool(kernel, stride, padding), x, ref=ref.numpy(), what=f"AvgPool {case[0]}")
    if all(a == b and a <= k // 2 for (a, b), k in zip(pairs, kernel)):  # torch's own padding counts zeros too
        ref = AVGF[nd](T(x), kernel, stride, [a for a, _ in pairs], count_include_pad=True)
        parity.assert_same(ref.numpy(), out, what="AvgPool vs count_include_pad=True")


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_global_pools_match_adaptive_pools(nd):
    x = rand(2, 3, *(4, 5, 3)[:nd])
    kernel = (2,) * (nd - 1) + (-1,)
    adaptive_max = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}[nd]
    adaptive_avg = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}[nd]
    out = check(lambda d: d.MaxPool(kernel), x, ref=adaptive_max(T(x), 1).numpy(), what="global MaxPool")
    assert out.shape == (2, 3) + (1,) * nd
    check(lambda d: d.AvgPool(kernel), x, ref=adaptive_avg(T(x), 1).numpy(), what="global AvgPool")


def test_pool_bad_arguments_raise_clearly():
    both_raise(ValueError, "1-, 2- and 3-D", lambda d: d.MaxPool((2, 2, 2, 2)))
    both_raise(ValueError, "must be >= 0", lambda d: d.AvgPool((2, 2), padding=-1))
    both_raise(ValueError, "padding needs", lambda d: d.MaxPool((2, 2), padding=[1, 1, 1]))
    both_raise(ValueError, "kernel sizes", lambda d: d.MaxPool((0, 2)))
    for dock in (TDOCK, JDOCK):
        with pytest.raises(ValueError, match=r"MaxPool: kernel \(5, 5\) is larger than the padded input"):
            parity.build(dock, lambda d: d.MaxPool((5, 5)))(dock.coat(rand(1, 1, 3, 3)))


# ------------------------------------------------------------------------------------------------ graph convs

NODES = 6
_rng = np.random.default_rng(3)
ADJ = np.triu((_rng.random((NODES, NODES)) < 0.5).astype(np.float32), 1)
ADJ = ADJ + ADJ.T + np.eye(NODES, dtype=np.float32)
LAP = (np.diag(ADJ.sum(1)) - ADJ) / NODES
EIGM = np.linalg.eigh(LAP)[1][:, :4].astype(np.float32)


def graph_case(factory, numpy_formula, what):
    for x in (rand(NODES, 3, seed=1), rand(2, NODES, 3, seed=2)):  # plain and batched node features
        out_t, out_j, craft_t, craft_j = parity.outputs(factory, x)
        parity.assert_same(out_t, out_j, what=f"{what}: torch vs jax")
        w = craft_t.export_weights()
        parity.assert_same(numpy_formula(x, w), out_t, what=f"{what}: torch vs NumPy")
    for craft in (craft_t, craft_j):  # the graph matrix is a constant: neither trained nor exported
        assert sorted(craft.export_weights()) == sorted(w)
        assert len(craft.vars()) == len(w)
    return w


def test_graph_conv_eig():
    def formula(x, w):
        return EIGM @ (w["theta"][:, None] * (EIGM.T @ (x @ w["weight"].T))) + w["bias"]

    w = graph_case(lambda d: d.GraphConvEig(3, 5, EIGM, b_init=d.Normal()), formula, "GraphConvEig")
    assert sorted(w) == ["bias", "theta", "weight"] and w["theta"].shape == (4,) and w["weight"].shape == (5, 3)


def test_graph_conv_lap():
    def formula(x, w):
        poly = sum(t * np.linalg.matrix_power(LAP.astype(np.float64), k) for k, t in enumerate(w["theta"]))
        return poly @ (x @ w["weight"].T) + w["bias"]

    w = graph_case(lambda d: d.GraphConvLap(3, 3, 5, LAP, b_init=d.Normal()), formula, "GraphConvLap")
    assert w["theta"].shape == (3,)


def test_graph_conv_adj_dense_and_sparse():
    def formula(x, w):
        return ADJ @ (x @ w["weight"].T) + w["bias"]

    graph_case(lambda d: d.GraphConvAdj(3, 5, ADJ, b_init=d.Normal()), formula, "GraphConvAdj")
    torch_sparse, jax_sparse = T(ADJ).to_sparse(), sparse.BCOO.fromdense(ADJ)

    def sparse_factory(d):
        return d.GraphConvAdj(3, 5, torch_sparse if d is TDOCK else jax_sparse, b_init=d.Normal())

    graph_case(sparse_factory, formula, "sparse GraphConvAdj")
    assert parity.build(TDOCK, sparse_factory).adj.is_sparse
    assert parity.build(JDOCK, sparse_factory).sparse


def test_graph_conv_bad_matrices_raise_clearly():
    both_raise(ValueError, "square", lambda d: d.GraphConvAdj(3, 2, np.ones((4, 5), np.float32)))
    both_raise(ValueError, "2-D numeric matrix", lambda d: d.GraphConvLap(2, 3, 2, np.ones(4, np.float32)))
    both_raise(ValueError, "order must be >= 1", lambda d: d.GraphConvLap(0, 3, 2, LAP))
    both_raise(ValueError, "2-D numeric matrix", lambda d: d.GraphConvEig(3, 2, {"not": "a matrix"}))
