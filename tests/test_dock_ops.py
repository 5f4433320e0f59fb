"""Activation, element-wise, reduction/indexing, linear-algebra and shape crafts: torch vs JAX parity,
the torch side against torch's own functions, gradients (through Prober) on both engines, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests import parity

pytestmark = pytest.mark.once

T = torch.from_numpy


def rand(*shape, lo=-2.0, hi=2.0, seed=0):
    return np.random.default_rng(seed).uniform(lo, hi, size=shape).astype(np.float32)


def check(factory, *inputs, ref=None, what="", rtol=1e-5, atol=1e-5, **kwargs):
    """Run factory(dock)(*inputs, **kwargs) on both engines; assert parity and, if given, the torch reference."""
    out_t, out_j, _, _ = parity.outputs(factory, *inputs, **kwargs)
    parity.assert_same(out_t, out_j, rtol, atol, f"{what}: torch vs jax")
    if ref is not None:
        parity.assert_same(ref, out_t, rtol, atol, f"{what}: torch craft vs torch reference")
    return out_t, out_j


def probe(factory, *inputs, wrt=(0,), pick=None, call=None, seed=1):
    """Gradients of sum(w * out) w.r.t. the `wrt` inputs and the craft's parameters, on (torch, jax).

    `call(craft, *inputs)` replaces the plain call; `pick` maps the output to the one array to
    differentiate. Non-NumPy inputs (axes, flags) pass as they are.
    """
    results = []
    for dock in parity.DOCKS:
        inner = parity.build(dock, factory)

        def apply(craft, *args):
            out = craft(*args) if call is None else call(craft, *args)
            return out if pick is None else pick(out)

        class Probe(dock.Craft):
            def __init__(self):
                super().__init__("PROBE")
                self.inner, self.total = inner, dock.Sum()

            def run(self, w, *args):
                return self.total(apply(self.inner, *args) * w)

        net = Probe()
        args = [dock.coat(a) if isinstance(a, np.ndarray) else a for a in inputs]
        with dock.Nozzle():
            w = dock.coat(rand(*np.shape(dock.shell(apply(inner, *args))), seed=seed))
        with dock.Prober(wrt=tuple(i + 1 for i in wrt)) as pb:
            net(w, *args)
        results.append(dock.shell({"inputs": pb.grads["inputs"], "params": pb.grads["params"]}))
    parity.assert_same(results[0], results[1], 1e-5, 1e-5, "gradients: torch vs jax")
    return results


def both_raise(error, match, factory, *inputs, **kwargs):
    """The same bad call raises `error` (message matching `match`) on both engines."""
    for dock in parity.DOCKS:
        args = [dock.coat(a) if isinstance(a, np.ndarray) else a for a in inputs]
        with pytest.raises(error, match=match):
            factory(dock)(*args, **kwargs)


# ----------------------------------------------------------------------------------------------- activations

EDGES = np.array([0.0, 19.9, 20.0, 20.5, 30.0, -30.0, 1e-3, -1e-3], np.float32)
ACTIVATIONS = [
    ("Relu", lambda d: d.Relu(), F.relu),
    ("LRelu", lambda d: d.LRelu(0.1), lambda x: F.leaky_relu(x, 0.1)),
    ("LRelu-default", lambda d: d.LRelu(), lambda x: F.leaky_relu(x, 0.2)),
    ("PRelu", lambda d: d.PRelu(0.25), lambda x: torch.nn.PReLU(init=0.25)(x)),
    ("Gelu", lambda d: d.Gelu(), lambda x: torch.nn.GELU()(x)),
    ("Silu", lambda d: d.Silu(), F.silu),
    ("Tanh", lambda d: d.Tanh(), torch.tanh),
    ("Sigm", lambda d: d.Sigm(), torch.sigmoid),
    ("Sftm", lambda d: d.Sftm(), lambda x: F.softmax(x, -1)),
    ("Sftm-axis0", lambda d: d.Sftm(axis=0), lambda x: F.softmax(x, 0)),
    ("Sftp", lambda d: d.Sftp(), lambda x: torch.nn.Softplus()(x)),
]


@pytest.mark.parametrize("name, factory, ref", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_parity_reference_and_gradients(name, factory, ref):
    x = np.concatenate([rand(3, 8), EDGES[None, :]], axis=0)
    expected = ref(T(x)).detach().numpy()
    check(factory, x, ref=expected, what=name)
    xt = T(x).requires_grad_(True)
    w = rand(*x.shape, seed=1)
    (ref(xt) * T(w)).sum().backward()
    grads_t, _ = probe(factory, x)
    parity.assert_same(xt.grad.numpy(), grads_t["inputs"][1], 1e-5, 1e-5, f"{name}: d/dx vs torch reference")


def test_softmax_axis_is_used():
    x = rand(3, 4)
    out_t, out_j = check(lambda d: d.Sftm(axis=0), x, what="Sftm(0)")
    np.testing.assert_allclose(out_j.sum(axis=0), np.ones(4), rtol=1e-6)
    assert not np.allclose(out_j.sum(axis=1), np.ones(3))


def test_prelu_weight_is_one_learnable_slope_named_like_torch():
    x = rand(2, 5)
    _, _, tc, jc = parity.outputs(lambda d: d.PRelu(0.3), x)
    for craft in (tc, jc):
        weights = craft.export_weights()
        assert list(weights) == ["weight"] and weights["weight"].shape == (1,)
        np.testing.assert_allclose(weights["weight"], [0.3])
        craft.import_weights({"weight": np.array([-0.7], np.float32)})
    reference = torch.nn.PReLU()
    reference.load_state_dict({"weight": torch.tensor([-0.7])})
    outs = [parity.DOCKS[i].shell(c(parity.DOCKS[i].coat(x))) for i, c in enumerate((tc, jc))]
    parity.assert_same(outs[0], outs[1], what="PRelu after import")
    parity.assert_same(reference(T(x)).detach().numpy(), outs[0], what="PRelu vs torch.nn.PReLU")
    grads_t, _ = probe(lambda d: d.PRelu(0.3), x)
    w = rand(2, 5, seed=1)
    np.testing.assert_allclose(grads_t["params"]["inner/weight"], [np.sum(np.where(x > 0, 0, x) * w)], rtol=1e-5)


# ----------------------------------------------------------------------------------------------- element-wise

UNARY = [
    ("Sqrt", torch.sqrt, 0.1, 3.0),
    ("Exp", torch.exp, -2.0, 2.0),
    ("Log", torch.log, 0.1, 3.0),
    ("Sin", torch.sin, -4.0, 4.0),
    ("Cos", torch.cos, -4.0, 4.0),
]


@pytest.mark.parametrize("name, ref, lo, hi", UNARY, ids=[u[0] for u in UNARY])
def test_unary_maths(name, ref, lo, hi):
    x = rand(3, 4, lo=lo, hi=hi)
    check(lambda d: getattr(d, name)(), x, ref=ref(T(x)).numpy(), what=name)
    probe(lambda d: getattr(d, name)(), x)


@pytest.mark.parametrize("name, ref", [("Maxele", torch.maximum), ("Minele", torch.minimum)])
def test_elementwise_max_min_broadcast_and_ties(name, ref):
    x = rand(3, 4)
    y = rand(4, seed=2)
    x[1] = y  # ties: both engines split the gradient between the two operands
    check(lambda d: getattr(d, name)(), x, y, ref=ref(T(x), T(y)).numpy(), what=name)
    xt, yt = T(x).requires_grad_(True), T(y).requires_grad_(True)
    (ref(xt, yt) * T(rand(3, 4, seed=1))).sum().backward()
    grads_t, _ = probe(lambda d: getattr(d, name)(), x, y, wrt=(0, 1))
    parity.assert_same(xt.grad.numpy(), grads_t["inputs"][1], what=f"{name} dx vs torch")
    parity.assert_same(yt.grad.numpy(), grads_t["inputs"][2], what=f"{name} dy vs torch")


@pytest.mark.parametrize(
    "ranges, lo, hi", [((-0.5, 1.0), -0.5, 1.0), (0.7, -0.7, 0.7), ([-1, 0], -1, 0), ((None, 0.5), None, 0.5)]
)
def test_clip_ranges(ranges, lo, hi):
    x = np.concatenate([rand(3, 4), np.array([[-0.5, 1.0, 0.7, -0.7]], np.float32)])
    check(lambda d: d.Clip(), x, ranges, ref=torch.clamp(T(x), lo, hi).numpy(), what=f"Clip{ranges}")
    grads_t, _ = probe(lambda d: d.Clip(), x, ranges)
    xt = T(x).requires_grad_(True)
    (torch.clamp(xt, lo, hi) * T(rand(*x.shape, seed=1))).sum().backward()
    parity.assert_same(xt.grad.numpy(), grads_t["inputs"][1], what="Clip gradient vs torch (boundaries included)")


def test_clip_array_bounds_and_in_place_is_ignored():
    x, lo, hi = rand(3, 4), rand(4, lo=-1, hi=-0.2, seed=3), rand(3, 4, lo=0.2, hi=1, seed=4)
    ref = torch.clamp(T(x), T(lo), T(hi)).numpy()
    check(lambda d: d.Clip(), x, lo, hi, ref=ref, what="Clip(array bounds)", call=lambda c, x, a, b: c(x, (a, b)))
    grads_t, _ = probe(lambda d: d.Clip(), x, lo, hi, wrt=(0, 1, 2), call=lambda c, x, a, b: c(x, (a, b)))
    xt, lot, hit = (T(v).requires_grad_(True) for v in (x, lo, hi))
    (torch.clamp(xt, lot, hit) * T(rand(3, 4, seed=1))).sum().backward()
    for i, t in enumerate((xt, lot, hit)):
        parity.assert_same(t.grad.numpy(), grads_t["inputs"][i + 1], what=f"Clip gradient {i} vs torch")
    for dock in parity.DOCKS:
        xd = dock.coat(x)
        out = dock.Clip()(xd, 0.1, in_place=True)
        np.testing.assert_array_equal(dock.shell(xd), x)  # the input is untouched on both engines
        np.testing.assert_allclose(dock.shell(out), np.clip(x, -0.1, 0.1))


@pytest.mark.parametrize(
    "ranges, match", [((1.0, -1.0), "lo <= hi"), (-0.5, "lo <= hi"), ((0, 1, 2), r"\(lo, hi\)"), (None, "got None")]
)
def test_clip_bad_ranges(ranges, match):
    both_raise(ValueError, match, lambda d: d.Clip(), rand(2, 2), ranges)


# ----------------------------------------------------------------------------------------------- reductions

REDUCERS = [
    ("Mean", torch.mean),
    ("Sum", torch.sum),
    ("Max", torch.amax),
    ("Min", torch.amin),
]
AXES = [(None, True), (1, False), (-1, True), ((0, 2), False), ([2, 1], True)]


@pytest.mark.parametrize("name, ref", REDUCERS, ids=[r[0] for r in REDUCERS])
@pytest.mark.parametrize("axis, reduce", AXES, ids=[f"{a}-{r}" for a, r in AXES])
def test_reductions(name, ref, axis, reduce):
    x = rand(2, 3, 4)
    x[0, 1, 2] = x[0, 1, 0] = x.max()  # a tie: Max/Min share the gradient between tied elements on both
    x[1, 0, 1] = x[1, 0, 3] = x.min()
    if axis is None:
        expected = ref(T(x)).numpy()
    else:
        expected = ref(T(x), tuple(axis) if isinstance(axis, list) else axis, keepdim=not reduce).numpy()
    out_t, out_j = check(lambda d: getattr(d, name)(), x, axis, reduce, ref=expected, what=f"{name}({axis})")
    assert np.shape(out_j) == np.shape(expected)  # values only, never a (values, indices) pair
    grads_t, _ = probe(lambda d: getattr(d, name)(), x, axis, reduce)
    xt = T(x).requires_grad_(True)
    y = ref(xt) if axis is None else ref(xt, tuple(axis) if isinstance(axis, list) else axis, keepdim=not reduce)
    (y * T(rand(*np.shape(expected), seed=1))).sum().backward()
    parity.assert_same(xt.grad.numpy(), grads_t["inputs"][1], what=f"{name}({axis}) gradient vs torch")


@pytest.mark.parametrize("name, ref", [("Argmax", torch.argmax), ("Argmin", torch.argmin)])
@pytest.mark.parametrize("axis, reduce", [(None, True), (0, True), (2, False), (-2, True)])
def test_arg_reductions(name, ref, axis, reduce):
    x = rand(2, 3, 4)
    x[1, 2, 1] = x[1, 2, 3] = x.max() + 1  # ties: the first index wins on both
    x[0, 0, 2] = x[0, 0, 3] = x.min() - 1
    expected = ref(T(x)) if axis is None else ref(T(x), axis, keepdim=not reduce)
    check(lambda d: getattr(d, name)(), x, axis, reduce, ref=expected.numpy(), what=f"{name}({axis})")


@pytest.mark.parametrize("name", ["Mean", "Sum", "Max", "Min", "Argmax", "Argmin"])
def test_reduce_false_needs_an_axis(name):
    both_raise(ValueError, "needs an axis", lambda d: getattr(d, name)(), rand(2, 3), None, False)


@pytest.mark.parametrize("name", ["Argmax", "Argmin"])
def test_arg_reductions_take_one_axis(name):
    both_raise(ValueError, "one int axis", lambda d: getattr(d, name)(), rand(2, 3), (0, 1))


# ----------------------------------------------------------------------------------------------- Dot

DOTS = [
    ("mm", (3, 4), (4, 5), {}, lambda a, b: a @ b),
    ("matvec", (3, 4), (4,), {}, torch.matmul),
    ("broadcast", (2, 3, 4), (4, 5), {}, torch.matmul),
    ("bmm", (2, 3, 4), (2, 4, 5), {"in_batch": True}, torch.bmm),
    ("axes-int", (2, 3, 4), (3, 4, 5), {"axes": 2}, lambda a, b: torch.tensordot(a, b, 2)),
    (
        "axes-pair",
        (2, 3, 4),
        (4, 3, 5),
        {"axes": ((1, 2), (1, 0))},
        lambda a, b: torch.tensordot(a, b, ([1, 2], [1, 0])),
    ),
    ("axes-ints", (3, 4), (5, 3), {"axes": (0, 1)}, lambda a, b: torch.tensordot(a, b, ([0], [1]))),
]


@pytest.mark.parametrize("name, xs, ys, kwargs, ref", DOTS, ids=[d[0] for d in DOTS])
def test_dot(name, xs, ys, kwargs, ref):
    x, y = rand(*xs), rand(*ys, seed=2)
    check(lambda d: d.Dot(), x, y, ref=ref(T(x), T(y)).numpy(), what=f"Dot {name}", **kwargs)
    axes, in_batch = kwargs.get("axes", ()), kwargs.get("in_batch", False)
    grads_t, _ = probe(lambda d: d.Dot(), x, y, axes, in_batch, wrt=(0, 1))
    xt, yt = T(x).requires_grad_(True), T(y).requires_grad_(True)
    out = ref(xt, yt)
    (out * T(rand(*out.shape, seed=1))).sum().backward()
    parity.assert_same(xt.grad.numpy(), grads_t["inputs"][1], what=f"Dot {name} dx vs torch")
    parity.assert_same(yt.grad.numpy(), grads_t["inputs"][2], what=f"Dot {name} dy vs torch")


@pytest.mark.parametrize(
    "xs, ys, kwargs, match",
    [
        ((3, 4), (4, 5), {"in_batch": True}, r"\(B, n, k\)"),
        ((2, 3, 4), (3, 4, 5), {"in_batch": True}, r"\(B, n, k\)"),
        ((3, 4), (4, 5), {"axes": 1, "in_batch": True}, "in_batch does not apply"),
        ((3, 4), (4, 5), {"axes": ((0, 1), (0,))}, "equal length"),
    ],
)
def test_dot_bad_input(xs, ys, kwargs, match):
    both_raise(ValueError, match, lambda d: d.Dot(), rand(*xs), rand(*ys), **kwargs)


# ----------------------------------------------------------------------------------------------- Gather / Scatter


@pytest.mark.parametrize(
    "xs, axis, idx",
    [
        ((3, 4), 1, [[0, 3], [2, 2], [1, 0]]),
        ((3, 4), 0, [[2, 0, 1, 1], [0, 0, 2, 1]]),
        ((3, 4), -1, [[3], [1]]),  # idx smaller than x off the axis, as torch.gather allows
        ((2, 3, 2), 1, [[[2, 0], [1, 1]], [[0, 2], [2, 2]]]),
    ],
)
def test_gather(xs, axis, idx):
    x, idx = rand(*xs), np.array(idx, np.int64)
    ref = torch.gather(T(x), axis, T(idx)).numpy()
    check(lambda d: d.Gather(), x, axis, idx, ref=ref, what=f"Gather axis {axis}")
    grads_t, _ = probe(lambda d: d.Gather(), x, axis, idx)
    xt = T(x).requires_grad_(True)
    (torch.gather(xt, axis, T(idx)) * T(rand(*idx.shape, seed=1))).sum().backward()
    parity.assert_same(xt.grad.numpy(), grads_t["inputs"][1], what="Gather gradient vs torch (repeats accumulate)")


@pytest.mark.parametrize(
    "xs, ys, axis, idx",
    [
        ((3, 5), (3, 2), 1, [[0, 3], [4, 2], [1, 0]]),
        ((3, 5), (3, 3), 1, [[4, 1], [0, 3]]),  # y and x larger than idx: the leading block of y is used
        ((4, 2), (2, 2), 0, [[3, 0], [1, 2]]),
        ((2, 3, 2), (2, 2, 2), -2, [[[2, 0], [0, 1]], [[1, 2], [0, 0]]]),
    ],
)
def test_scatter(xs, ys, axis, idx):
    x, y, idx = rand(*xs), rand(*ys, seed=2), np.array(idx, np.int64)
    ref = torch.scatter(T(x), axis, T(idx), T(y)).numpy()
    check(lambda d: d.Scatter(), x, y, axis, idx, ref=ref, what=f"Scatter axis {axis}")
    grads_t, _ = probe(lambda d: d.Scatter(), x, y, axis, idx, wrt=(0, 1))
    xt, yt = T(x).requires_grad_(True), T(y).requires_grad_(True)
    used = yt[tuple(slice(0, n) for n in idx.shape)]  # torch's own backward fails for a y larger than idx
    (torch.scatter(xt, axis, T(idx), used) * T(rand(*xs, seed=1))).sum().backward()
    parity.assert_same(xt.grad.numpy(), grads_t["inputs"][1], what="Scatter dx vs torch")
    parity.assert_same(yt.grad.numpy(), grads_t["inputs"][2], what="Scatter dy vs torch")


def test_scatter_number_and_input_untouched():
    x, idx = rand(3, 4), np.array([[1], [3], [0]], np.int64)
    ref = torch.scatter(T(x), 1, T(idx), 5.0).numpy()
    check(lambda d: d.Scatter(), x, 5.0, 1, idx, ref=ref, what="Scatter(number)")
    for dock in parity.DOCKS:
        xd = dock.coat(x)
        dock.Scatter()(xd, 0.0, 1, dock.coat(idx), in_place=True)
        np.testing.assert_array_equal(dock.shell(xd), x)


@pytest.mark.parametrize("name", ["Gather", "Scatter"])
@pytest.mark.parametrize(
    "idx, axis, error, match",
    [
        (np.zeros((3,), np.int64), 1, ValueError, "as many dims"),
        (np.zeros((4, 2), np.int64), 1, ValueError, "larger than x"),
        (np.zeros((3, 2), np.int64), 2, ValueError, "out of range"),
        (np.zeros((3, 2), np.float32), 1, TypeError, "integer"),
    ],
)
def test_gather_scatter_bad_index(name, idx, axis, error, match):
    x = rand(3, 4)
    if name == "Gather":
        both_raise(error, match, lambda d: d.Gather(), x, axis, idx)
    else:
        both_raise(error, match, lambda d: d.Scatter(), x, rand(3, 2), axis, idx)


def test_scatter_y_smaller_than_idx():
    both_raise(ValueError, "at least as large", lambda d: d.Scatter(), rand(3, 4), rand(3, 1), 1, np.zeros((3, 2), int))


# ----------------------------------------------------------------------------------------------- linear algebra


@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5), (2, 4, 3)])
@pytest.mark.parametrize("reduced", [False, True])
def test_qr(shape, reduced):
    m = rand(*shape)
    (q_t, r_t), (q_j, r_j) = check(lambda d: d.QR(), m, reduced, what=f"QR{shape}")
    q0, r0 = torch.linalg.qr(T(m), mode="reduced" if reduced else "complete")
    k = min(shape[-2:])
    for q, r in ((q_t, r_t), (q_j, r_j)):
        np.testing.assert_allclose(q @ r, m, atol=1e-5)
        np.testing.assert_allclose(
            np.swapaxes(q, -1, -2) @ q,
            np.broadcast_to(np.eye(q.shape[-1]), q.shape[:-2] + (q.shape[-1],) * 2),
            atol=1e-5,
        )
        assert (np.diagonal(r, axis1=-2, axis2=-1) >= 0).all()
        np.testing.assert_allclose(np.abs(r), np.abs(r0.numpy()), atol=1e-5)  # torch's R up to row signs
        np.testing.assert_allclose(np.abs(q[..., :k]), np.abs(q0.numpy()[..., :k]), atol=1e-5)
    grads_t, _ = probe(lambda d: d.QR(), m, True, pick=lambda out: out[1])  # through R of the thin form
    mt = T(m).requires_grad_(True)
    q, r = torch.linalg.qr(mt)
    sign = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).detach()
    ((r * sign.unsqueeze(-1)) * T(rand(*r.shape, seed=1))).sum().backward()
    parity.assert_same(mt.grad.numpy(), grads_t["inputs"][1], what="QR dR/dm vs torch")


def symmetric(n, batch=(), seed=0):
    a = rand(*batch, n, n, seed=seed)
    return (a + np.swapaxes(a, -1, -2)) / 2


@pytest.mark.parametrize("batch", [(), (2,)])
def test_eigen_symmetric(batch):
    m = symmetric(4, batch)
    (w_t, v_t), (w_j, v_j) = check(lambda d: d.Eigen(), m, what="Eigen")
    np.testing.assert_allclose(w_t, torch.linalg.eigvalsh(T(m)).numpy(), atol=1e-5)
    for w, v in ((w_t, v_t), (w_j, v_j)):
        assert (np.diff(w, axis=-1) > 0).all()
        np.testing.assert_allclose(v @ (w[..., :, None] * np.swapaxes(v, -1, -2)), m, atol=1e-5)
        top = np.take_along_axis(v, np.abs(v).argmax(axis=-2)[..., None, :], axis=-2)
        assert (top > 0).all()
    values_t, values_j = check(lambda d: d.Eigen(), m, False, what="Eigen(in_pair=False)")
    np.testing.assert_allclose(values_j, w_j, atol=1e-5)
    grads_t, _ = probe(lambda d: d.Eigen(), m, pick=lambda out: out[0])
    mt = T(m).requires_grad_(True)
    (torch.linalg.eigvalsh(mt) * T(rand(*w_t.shape, seed=1))).sum().backward()
    parity.assert_same(mt.grad.numpy(), grads_t["inputs"][1], what="Eigen dλ/dm vs torch")


def test_eigen_reads_the_lower_triangle_only():
    m = rand(4, 4)
    lower = np.tril(m) + np.tril(m, -1).T
    out_t, out_j = check(lambda d: d.Eigen(), m, what="Eigen(non-symmetric)")
    expected = check(lambda d: d.Eigen(), lower, what="Eigen(lower)")[0]
    parity.assert_same(expected, out_t, what="torch: lower triangle")
    parity.assert_same(expected, out_j, what="jax: lower triangle")


def test_max_eigen_parity_and_convergence():
    m = symmetric(5, (2,), seed=5) + np.diag([3.0, 0, 0, 0, 0]).astype(np.float32)  # a clear dominant eigenvalue
    check(lambda d: d.MaxEigen(), m, what="MaxEigen(3)")
    (val_t, vec_t), (val_j, vec_j) = check(lambda d: d.MaxEigen(60), m, what="MaxEigen(60)")
    w, v = np.linalg.eigh(m.astype(np.float64))
    pick = np.abs(w).argmax(axis=-1)
    for b in range(2):
        np.testing.assert_allclose(val_j[b], w[b, pick[b]], rtol=1e-5)
        np.testing.assert_allclose(np.abs(vec_j[b] @ v[b, :, pick[b]]), 1.0, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(vec_j[b]), 1.0, atol=1e-5)
    value_only = check(lambda d: d.MaxEigen(60), m, False, what="MaxEigen(in_pair=False)")[1]
    np.testing.assert_allclose(value_only, val_j, rtol=1e-6)
    probe(lambda d: d.MaxEigen(), m, pick=lambda out: out[0])


def test_max_eigen_start_vector_is_not_stuck_on_a_laplacian():
    # ones is an eigenvector of every graph Laplacian (eigenvalue 0): a ones start would never leave it
    lap = (2 * np.eye(5) - np.eye(5, k=1) - np.eye(5, k=-1)).astype(np.float32)
    lap[0, 0] = lap[-1, -1] = 1
    value = check(lambda d: d.MaxEigen(80), lap, False, what="MaxEigen(Laplacian)")[1]
    np.testing.assert_allclose(value, 2 - 2 * np.cos(4 * np.pi / 5), rtol=1e-5)


def wrapped(a):
    return np.angle(np.exp(1j * np.asarray(a, np.float64)))


@pytest.mark.parametrize("normal", [False, True])
@pytest.mark.parametrize("dim", [1, 2])
def test_fft_and_round_trip(normal, dim):
    m = rand(2, 3, 5, lo=0.5, hi=1.5)  # odd sizes, positive mean: no bin sits on the phase's branch cut
    axes = tuple(range(-dim, 0))
    ft0 = torch.fft.fftn(T(m), dim=axes, norm="ortho" if normal else "backward")
    out_t, out_j, _, _ = parity.outputs(lambda d: d.FFT(dim), m, normal)
    for (ft, amp, pha), who in ((out_t, "torch"), (out_j, "jax")):
        assert np.iscomplexobj(ft)
        np.testing.assert_allclose(ft, ft0.numpy(), rtol=1e-5, atol=1e-5, err_msg=who)
        np.testing.assert_allclose(amp, np.sqrt(np.abs(ft0.numpy()) ** 2 + 1e-10), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(wrapped(pha - torch.angle(ft0).numpy()), 0, atol=1e-5, err_msg=who)
    parity.assert_same(out_t[:2], out_j[:2], what="FFT (ft, amplitude)")
    np.testing.assert_allclose(wrapped(out_t[2] - out_j[2]), 0, atol=1e-5)
    ft_only = check(lambda d: d.FFT(dim), m, normal, False, what="FFT(in_pair=False)")[1]
    np.testing.assert_allclose(ft_only, out_j[0], rtol=1e-6, atol=1e-6)
    back_t, back_j = check(lambda d: d.IFFT(dim), np.array(out_j[0]), normal, what="IFFT")
    np.testing.assert_allclose(back_j, m, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(back_t, m, rtol=1e-5, atol=1e-5)
    probe(lambda d: d.FFT(dim), m, normal, pick=lambda out: out[1])  # gradient through the amplitude


def test_ifft_returns_the_real_part():
    spectrum = (rand(3, 4) + 1j * rand(3, 4, seed=2)).astype(np.complex64)
    ref = torch.fft.ifftn(T(spectrum), dim=(-2, -1), norm="ortho").real.numpy()
    check(lambda d: d.IFFT(2), spectrum, True, ref=ref, what="IFFT(complex)")


def test_linalg_bad_constructor_arguments():
    for dock in parity.DOCKS:
        with pytest.raises(ValueError, match="dim >= 1"):
            dock.FFT(0)
        with pytest.raises(ValueError, match="dim >= 1"):
            dock.IFFT(0)
        with pytest.raises(ValueError, match="niters >= 1"):
            dock.MaxEigen(0)


# ----------------------------------------------------------------------------------------------- shape

X = rand(2, 3, 4)
SHAPES = [
    ("Roll", (1, 0), lambda t: torch.roll(t, 1, 0)),
    ("Roll", ((1, -2), (0, 2)), lambda t: torch.roll(t, (1, -2), (0, 2))),
    ("Roll", (5,), lambda t: torch.roll(t, 5)),
    ("Reshape", ((4, -1),), lambda t: t.reshape(4, -1)),
    ("Reshape", ([6, 4],), lambda t: t.reshape(6, 4)),
    ("Permute", ((2, 0, 1),), lambda t: t.permute(2, 0, 1)),
    ("Expand", (), lambda t: t.unsqueeze(0)),
    ("Expand", (-1,), lambda t: t.unsqueeze(-1)),
    ("Expand", (2,), lambda t: t.unsqueeze(2)),
    ("Tile", ((2, 1, 3),), lambda t: t.repeat(2, 1, 3)),
    ("Tile", ((2, 1, 1, 2),), lambda t: t.repeat(2, 1, 1, 2)),
]


@pytest.mark.parametrize("name, args, ref", SHAPES, ids=[f"{s[0]}{s[1]}" for s in SHAPES])
def test_shape_crafts(name, args, ref):
    check(lambda d: getattr(d, name)(), X, *args, ref=ref(T(X)).numpy(), what=f"{name}{args}")
    probe(lambda d: getattr(d, name)(), X, *args)


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 2), -2])
def test_squash_follows_torch_squeeze(axis):
    x = rand(1, 3, 1, 4)
    expected = torch.squeeze(T(x)) if axis is None else torch.squeeze(T(x), axis)
    out_t, out_j = check(lambda d: d.Squash(), x, axis, ref=expected.numpy(), what=f"Squash({axis})")
    assert np.shape(out_j) == tuple(expected.shape)  # axis 1 has size 3: left as it is, as torch does


def test_squash_axis_out_of_range():
    both_raise(IndexError, "out of range", lambda d: d.Squash(), rand(1, 3), 2)


def test_tile_needs_a_count_per_dim():
    both_raise(ValueError, "one repeat count per dim", lambda d: d.Tile(), rand(2, 3), (2,))


@pytest.mark.parametrize("name, ref", [("Concat", torch.cat), ("Stack", torch.stack)])
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_concat_and_stack_take_a_list(name, ref, axis):
    a, b = rand(2, 3), rand(2, 3, seed=2)
    expected = ref([T(a), T(b)], axis).numpy()
    out_t, out_j, _, _ = parity.outputs(lambda d: getattr(d, name)(), a, b, call=lambda c, x, y: c([x, y], axis))
    parity.assert_same(out_t, out_j, what=f"{name} torch vs jax")
    parity.assert_same(expected, out_t, what=f"{name} vs torch")
