"""Shape and element-wise crafts for real scripts (issue 16): Flatten, Where, Abs, the constants Full / FullLike /
OnesLike / ZerosLike, and clear errors from Concat / Stack: torch vs JAX parity, each against torch's own function,
gradients on both engines, bad input with the same message on both, and use inside a user craft's `run`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nebulae.astro import init
from tests import parity

pytestmark = pytest.mark.once

T = torch.from_numpy


def rand(*shape, seed=0):
    return np.random.default_rng(seed).uniform(-2.0, 2.0, size=shape).astype(np.float32)


def check(factory, *inputs, ref, what, call=None):
    """factory(dock)(*inputs) on both engines: the same result, equal to torch's `ref`, with the same dtype name."""
    out_t, out_j, _, _ = parity.outputs(factory, *inputs, call=call)
    parity.assert_same(out_t, out_j, what=f"{what}: torch vs jax")
    parity.assert_same(ref.numpy() if isinstance(ref, torch.Tensor) else ref, out_t, what=f"{what} vs torch")
    return out_t, out_j


def grads(factory, *inputs, wrt, call=None):
    """Gradients of sum(out * w) w.r.t. the inputs `wrt`, (torch, jax), through Prober (a compiled step on JAX)."""
    results = []
    for dock in parity.DOCKS:
        inner = parity.build(dock, factory)

        class Probe(dock.Craft):
            def __init__(self):
                super().__init__("PROBE")
                self.inner, self.total = inner, dock.Sum()

            def run(self, w, *args):
                return self.total((inner(*args) if call is None else call(inner, *args)) * w)

        args = [dock.coat(a) if isinstance(a, np.ndarray) else a for a in inputs]
        with dock.Nozzle():
            shape = np.shape(dock.shell(inner(*args) if call is None else call(inner, *args)))
        with dock.Prober(wrt=tuple(i + 1 for i in wrt)) as pb:
            Probe()(dock.coat(rand(*shape, seed=9)), *args)
        results.append(dock.shell(pb.grads["inputs"]))
    return results


def torch_grads(fn, *inputs, wrt):
    """torch's gradients of sum(fn(*inputs) * w) w.r.t. the inputs `wrt` (same w as `grads`)."""
    ts = [T(a.copy()).requires_grad_(i in wrt) if isinstance(a, np.ndarray) else a for i, a in enumerate(inputs)]
    out = fn(*ts)
    (out * T(rand(*out.shape, seed=9))).sum().backward()
    return {i + 1: ts[i].grad.numpy() for i in wrt}


def both_raise(error, match, factory, *inputs, call=None):
    for dock in parity.DOCKS:
        args = [dock.coat(a) if isinstance(a, np.ndarray) else a for a in inputs]
        with pytest.raises(error, match=match):
            craft = factory(dock)
            craft(*args) if call is None else call(craft, *args)


# ----------------------------------------------------------------------------------------------- Flatten

X4 = rand(2, 3, 4, 5)


@pytest.mark.parametrize("start, end", [(1, -1), (0, -1), (1, 2), (-3, -2), (2, 2), (0, 0)])
def test_flatten_matches_torch_flatten_and_passes_gradients(start, end):
    ref = torch.flatten(T(X4), start, end)
    check(lambda d: d.Flatten(start, end), X4, ref=ref, what=f"Flatten({start}, {end})")
    g_t, g_j = grads(lambda d: d.Flatten(start, end), X4, wrt=(0,))
    expected = torch_grads(lambda t: torch.flatten(t, start, end), X4, wrt=(0,))
    parity.assert_same(expected, g_t, what="Flatten gradient torch vs torch.flatten")
    parity.assert_same(g_t, g_j, what="Flatten gradient torch vs jax")


def test_flatten_default_is_nn_flatten_and_a_0d_input_becomes_1d():
    check(lambda d: d.Flatten(), X4, ref=torch.nn.Flatten()(T(X4)), what="Flatten()")
    scalar = np.array(3.5, np.float32)
    assert tuple(torch.flatten(T(scalar)).shape) == (1,)
    for dock in parity.DOCKS:  # shell gives a Python number for one element: look at the array itself
        with dock.Nozzle():
            out = dock.Flatten(0)(dock.coat(scalar))
        assert tuple(out.shape) == (1,) and float(out[0]) == 3.5, dock.__name__


def test_flatten_bad_dims_raise_the_same_on_both_engines():
    both_raise(
        IndexError, r"Flatten: start_dim 4 is out of range for a 4-D array \(use -4 .. 3\)", lambda d: d.Flatten(4), X4
    )
    both_raise(IndexError, "Flatten: end_dim -5 is out of range", lambda d: d.Flatten(0, -5), X4)
    both_raise(
        ValueError, "Flatten: start_dim 2 comes after end_dim -3 for a 4-D input", lambda d: d.Flatten(2, -3), X4
    )
    for dock in parity.DOCKS:
        with pytest.raises(ValueError, match=r"start_dim \(2\) cannot come after end_dim \(1\)"):
            dock.Flatten(2, 1)
        with pytest.raises(TypeError, match="Flatten: start_dim must be an int, got 1.5"):
            dock.Flatten(1.5)


# ----------------------------------------------------------------------------------------------- Where, Abs


def test_where_matches_torch_where_with_broadcasting_and_routes_the_gradient():
    x, y = rand(3, 4), rand(4, seed=2)
    cond = x > 0.3
    ref = torch.where(T(cond), T(x), T(y))
    check(lambda d: d.Where(), cond, x, y, ref=ref, what="Where(arrays)")
    check(lambda d: d.Where(), cond, x, 0.5, ref=torch.where(T(cond), T(x), 0.5), what="Where(x, number)")
    g_t, g_j = grads(lambda d: d.Where(), cond, x, y, wrt=(1, 2))
    parity.assert_same(torch_grads(torch.where, cond, x, y, wrt=(1, 2)), g_t, what="Where gradient vs torch")
    parity.assert_same(g_t, g_j, what="Where gradient torch vs jax")


def test_where_bad_input_raises_the_same_on_both_engines():
    x = rand(3, 4)
    both_raise(
        TypeError,
        "Where needs a boolean array as condition, got dtype float32: compare first",
        lambda d: d.Where(),
        x,
        x,
        x,
    )
    msg = r"Where: the shapes condition \(3, 4\), x \(3, 4\), y \(3,\) do not broadcast together"
    both_raise(ValueError, msg, lambda d: d.Where(), x > 0, x, rand(3))


def test_abs_matches_torch_abs_with_gradient_zero_at_zero():
    x = np.concatenate([rand(2, 4), np.array([[0.0, -0.0, 1.0, -1.0]], np.float32)])
    check(lambda d: d.Abs(), x, ref=torch.abs(T(x)), what="Abs")
    g_t, g_j = grads(lambda d: d.Abs(), x, wrt=(0,))
    expected = torch_grads(torch.abs, x, wrt=(0,))
    assert (expected[1][2, :2] == 0).all()  # torch: sign(0) = 0
    parity.assert_same(expected, g_t, what="Abs gradient vs torch")
    parity.assert_same(g_t, g_j, 0, 0, what="Abs gradient torch vs jax (0 at 0: jnp.abs gives 1)")


def test_abs_of_integers_keeps_the_dtype():
    x = np.array([[-3, 0, 2]], np.int32)
    out_t, out_j = check(lambda d: d.Abs(), x, ref=torch.abs(T(x)), what="Abs(int32)")
    assert out_t.dtype == out_j.dtype == np.int32


# ----------------------------------------------------------------------------------------------- constants


@pytest.mark.parametrize("shape, value, dtype", [((2, 3), 0.25, "float32"), (4, 7, "int32"), ((2, 2), 1, "bool"),
                                                 ((3,), 1.5, "bfloat16"), ((0, 2), 2.0, "float32")])  # fmt: skip
def test_full_matches_torch_full(shape, value, dtype):
    ref = torch.full((shape,) if isinstance(shape, int) else shape, value, dtype=getattr(torch, dtype))
    for dock in parity.DOCKS:
        out = dock.Full(shape, value, dtype)()
        assert dock.Craft.ops.dtype_name(out) == dtype, dock.__name__
        assert tuple(out.shape) == tuple(ref.shape), dock.__name__
        values = [float(v) for v in out.reshape((-1,))]  # not shell: torch's cannot bring bfloat16 to NumPy
        np.testing.assert_array_equal(values, ref.float().reshape(-1).numpy())


def test_full_int64_is_int32_on_jax_as_documented():
    out_t, out_j = (dock.shell(dock.Full((2,), 3, "int64")()) for dock in parity.DOCKS)
    assert out_t.dtype == np.int64 and out_j.dtype == np.int32
    np.testing.assert_array_equal(out_t, out_j)


def test_full_bad_arguments_raise_the_same_on_both_engines():
    for dock in parity.DOCKS:
        with pytest.raises(
            ValueError, match=r"Full: shape must be an int or a tuple of non-negative ints, got \(2, -1\)"
        ):
            dock.Full((2, -1), 0.0)
        with pytest.raises(ValueError, match="Full: dtype must be one of bool, .*, got 'float'"):
            dock.Full((2,), 0.0, "float")
        with pytest.raises(TypeError, match="Full: value must be a real number"):
            dock.Full((2,), "0")
        with pytest.raises(TypeError, match="FullLike: value must be a real number"):
            dock.FullLike(None)


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
@pytest.mark.parametrize(
    "factory, ref",
    [
        (lambda d: d.FullLike(2.5), lambda t: torch.full_like(t, 2.5)),
        (lambda d: d.OnesLike(), torch.ones_like),
        (lambda d: d.ZerosLike(), torch.zeros_like),
    ],
    ids=["FullLike", "OnesLike", "ZerosLike"],
)
def test_like_constants_follow_the_input_dtype_like_torch(factory, ref, dtype):
    x = (rand(2, 3) * 3).astype(dtype)
    out_t, out_j = check(factory, x, ref=ref(T(x)), what=f"{ref} {dtype.__name__}")
    assert out_t.dtype == out_j.dtype == dtype  # FullLike(2.5) of int32 is 2, as torch.full_like truncates


def test_like_constants_carry_no_gradient():
    x = rand(2, 3)
    call = lambda c, x: c(x) + x  # noqa: E731 (d/dx = 1 from the x term only)
    for factory in (lambda d: d.FullLike(2.0), lambda d: d.OnesLike()):
        g_t, g_j = grads(factory, x, wrt=(0,), call=call)
        expected = torch_grads(lambda t: torch.ones_like(t) + t, x, wrt=(0,))
        parity.assert_same(expected, g_t, what="like-constant gradient vs torch")
        parity.assert_same(g_t, g_j, what="like-constant gradient torch vs jax")


def test_ones_and_zeros_stay_the_initialisers():
    for dock in parity.DOCKS:
        assert dock.Ones is init.Ones and dock.Zeros is init.Zeros
        assert dock.__all__.count("Ones") == 1 and dock.__all__.count("Zeros") == 1


# ----------------------------------------------------------------------------------------------- Concat, Stack


def test_concat_and_stack_bad_input_raise_the_same_on_both_engines():
    a, b = rand(2, 3), rand(2, 4)
    join = lambda c, x, y: c([x, y], 0)  # noqa: E731
    both_raise(ValueError, r"Concat: the arrays must have the same number of dims and the same sizes off axis 0, "
               r"got \[\(2, 3\), \(2, 4\)\]", lambda d: d.Concat(), a, b, call=join)  # fmt: skip
    both_raise(ValueError, r"Stack: every array must have the same shape, got \[\(2, 3\), \(2, 4\)\]",
               lambda d: d.Stack(), a, b, call=join)  # fmt: skip
    both_raise(IndexError, "Concat: axis 2 is out of range for a 2-D array", lambda d: d.Concat(), a, a,
               call=lambda c, x, y: c([x, y], 2))  # fmt: skip
    check(lambda d: d.Stack(), a, a, ref=torch.stack([T(a), T(a)], 2), what="Stack(axis=2)",
          call=lambda c, x, y: c([x, y], 2))  # fmt: skip
    both_raise(IndexError, r"Stack: axis 3 is out of range for a 2-D array \(use -3 .. 2\)", lambda d: d.Stack(),
               a, a, call=lambda c, x, y: c([x, y], 3))  # fmt: skip
    both_raise(TypeError, r"Concat takes a list \(or tuple\) of arrays, got a single array", lambda d: d.Concat(), a)
    both_raise(ValueError, "Stack needs at least one array", lambda d: d.Stack(), [])


# ----------------------------------------------------------------------------------------------- inside run


def test_the_new_crafts_work_inside_a_users_run_and_step():
    x = rand(2, 3, 4)

    def factory(dock):
        class Net(dock.Craft):
            def __init__(self):
                super().__init__("NET")
                self.flat, self.where, self.abs = dock.Flatten(), dock.Where(), dock.Abs()
                self.zeros, self.halves, self.stack = dock.ZerosLike(), dock.Full((12,), 0.5), dock.Stack()

            def run(self, x):
                h = self.flat(x)  # (2, 12)
                h = self.where(h > 0, h, self.zeros(h)) + self.abs(h) * self.halves()
                return self.stack([h, -h], 1)

        return Net()

    def reference(t):
        h = torch.flatten(t, 1)
        h = torch.where(h > 0, h, torch.zeros_like(h)) + torch.abs(h) * torch.full((12,), 0.5)
        return torch.stack([h, -h], 1)

    check(factory, x, ref=reference(T(x)), what="Net")
    g_t, g_j = grads(factory, x, wrt=(0,))
    parity.assert_same(torch_grads(reference, x, wrt=(0,)), g_t, what="Net gradient vs torch")
    parity.assert_same(g_t, g_j, what="Net gradient torch vs jax")
