"""Reductions and indexing: Mean, Max, Min, Argmax, Argmin, Sum, Dot, Gather, Scatter, as torch computes them.

Reductions are called `(x, axis=None, reduce=True)`: no axis reduces everything; an axis (int or
tuple; Argmax/Argmin take one int) reduces those dims, and `reduce=False` keeps them with size 1.
Max and Min return values only on both engines (use Argmax/Argmin for indices). Indices are int64
on torch and int32 on JAX (JAX runs without 64-bit types).
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Mean", "Max", "Min", "Argmax", "Argmin", "Sum", "Dot", "Gather", "Scatter"]


class Kernels(Protocol):
    def reduce(self, how: str, x: Any, axis: int | tuple[int, ...] | None, keep: bool) -> Any:
        """`how` ('mean', 'sum', 'max', 'min', 'argmax', 'argmin') of x over `axis` (None: every element,
        `keep` False); `keep` leaves the reduced dims with size 1. Max/min give values only, ties share
        the gradient; argmax/argmin give the first index."""

    def tensordot(self, x: Any, y: Any, axes: int | tuple) -> Any:
        """Sum of products over `axes`: an int n (last n of x, first n of y) or a pair of equal-length tuples."""

    def matmul(self, x: Any, y: Any) -> Any:
        """The matrix product with matmul's rules (1-D operands, broadcast leading batch dims)."""

    def gather(self, x: Any, axis: int, idx: Any) -> Any:
        """out[i][j][k] = x[i][idx[i][j][k]][k] for axis 1 (torch.gather); `axis` is non-negative."""

    def scatter(self, x: Any, axis: int, idx: Any, y: Any) -> Any:
        """A copy of x with out[i][idx[i][j][k]][k] = y[i][j][k] for axis 1; `y` has idx's shape (cast to x's
        dtype) or is a number; `axis` is non-negative."""


def check_axis(name: str, axis, reduce: bool, single: bool = False):
    """Validate a reduction's axis/reduce pair; lists become tuples."""
    if axis is None:
        if not reduce:
            raise ValueError(f"{name}: reduce=False keeps the reduced axes, so it needs an axis (got axis=None)")
        return None
    if isinstance(axis, list):
        axis = tuple(axis)
    if single and not isinstance(axis, int):
        raise ValueError(f"{name} takes one int axis (indices along one dim), got axis={axis!r}")
    return axis


def tensordot_axes(axes):
    """tensordot's axes: an int n (last n of x with first n of y) or a pair (x axes, y axes) of ints or sequences."""
    if isinstance(axes, int):
        return axes
    if len(axes) == 2:
        a, b = axes
        a = (a,) if isinstance(a, int) else tuple(a)
        b = (b,) if isinstance(b, int) else tuple(b)
        if len(a) == len(b):
            return a, b
    raise ValueError(f"Dot axes must be an int or a pair (x axes, y axes) of equal length, got {axes!r}")


def check_index(ops, name: str, x, axis: int, idx, y=None) -> int:
    """The shape rules of torch.gather / torch.scatter, as a ValueError that names what is wrong; the axis >= 0."""
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{name}: axis {axis} is out of range for a {x.ndim}-D array")
    if idx.ndim != x.ndim:
        raise ValueError(f"{name}: idx must have as many dims as x ({x.ndim}), got shape {tuple(idx.shape)}")
    axis %= x.ndim
    if any(i > s for d, (i, s) in enumerate(zip(idx.shape, x.shape)) if d != axis):
        raise ValueError(f"{name}: idx {tuple(idx.shape)} is larger than x {tuple(x.shape)} off axis {axis}")
    if y is not None and (y.ndim != x.ndim or any(i > s for i, s in zip(idx.shape, y.shape))):
        raise ValueError(f"{name}: y {tuple(y.shape)} must be at least as large as idx {tuple(idx.shape)} in every dim")
    if not ops.dtype_name(idx).startswith(("int", "uint")):
        raise TypeError(f"{name}: idx must be an integer array, got {ops.dtype_name(idx)}")
    return axis


class _Reduction:
    """A reduction `run(x, axis=None, reduce=True)` computed by the `reduce` kernel."""

    how = ""

    def run(self, x, axis: int | tuple[int, ...] | None = None, reduce: bool = True):
        axis = check_axis(type(self).__name__, axis, reduce)
        return self.ops.reduce(self.how, x, axis, not reduce)


class _ArgReduction:
    """An index reduction `run(x, axis=None, reduce=True)` along one int axis."""

    how = ""

    def run(self, x, axis: int | None = None, reduce: bool = True):
        axis = check_axis(type(self).__name__, axis, reduce, single=True)
        return self.ops.reduce(self.how, x, axis, not reduce)


class Mean(_Reduction):
    """Arithmetic mean over `axis` (all elements when None); `reduce=False` keeps the reduced dims.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    how = "mean"

    def __init__(self, scope: str = "MEAN"):
        super().__init__(scope)


class Sum(_Reduction):
    """Sum over `axis` (all elements when None); `reduce=False` keeps the reduced dims.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    how = "sum"

    def __init__(self, scope: str = "SUM"):
        super().__init__(scope)


class Max(_Reduction):
    """Maximum VALUES over `axis` (all elements when None); use Argmax for indices. Ties share the gradient.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    how = "max"

    def __init__(self, scope: str = "MAX"):
        super().__init__(scope)


class Min(_Reduction):
    """Minimum VALUES over `axis` (all elements when None); use Argmin for indices. Ties share the gradient.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    how = "min"

    def __init__(self, scope: str = "MIN"):
        super().__init__(scope)


class Argmax(_ArgReduction):
    """Index of the first maximum along one `axis` (into the flattened array when None).

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    how = "argmax"

    def __init__(self, scope: str = "ARGMAX"):
        super().__init__(scope)


class Argmin(_ArgReduction):
    """Index of the first minimum along one `axis` (into the flattened array when None).

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    how = "argmin"

    def __init__(self, scope: str = "ARGMIN"):
        super().__init__(scope)


class Dot:
    """Tensor product: tensordot over `axes` if given, else batched (B,n,k)@(B,k,m) when `in_batch`, else matmul.

    `axes` is an int n (the last n dims of x against the first n of y) or a pair (x axes, y axes). The
    plain product follows matmul's rules (1-D operands, broadcast leading batch dims).

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "DOT"):
        super().__init__(scope)

    def run(self, x, y, axes: int | tuple = (), in_batch: bool = False):
        if isinstance(axes, int) or len(axes):
            if in_batch:
                raise ValueError("Dot: in_batch does not apply when axes are given (tensordot)")
            return self.ops.tensordot(x, y, tensordot_axes(axes))
        if in_batch and (x.ndim != 3 or y.ndim != 3 or x.shape[0] != y.shape[0]):
            raise ValueError(
                f"Dot(in_batch=True) needs (B, n, k) and (B, k, m), got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        return self.ops.matmul(x, y)


class Gather:
    """out[i][j][k] = x[i][idx[i][j][k]][k] for axis 1 (torch.gather): idx has x's rank, sizes <= x's off `axis`.

    Indices must lie in [0, size): torch raises on others; JAX cannot check values inside a compiled step.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "GATHER"):
        super().__init__(scope)

    def run(self, x, axis: int, idx):
        return self.ops.gather(x, check_index(self.ops, "Gather", x, axis, idx), idx)


class Scatter:
    """Out-of-place torch.scatter: a copy of x with out[i][idx[i][j][k]][k] = y[i][j][k] for axis 1.

    `y` is an array at least as large as idx in every dim (its leading idx.shape block is used) or a
    number. Duplicate indices leave an unspecified winner on both engines; indices must lie in
    [0, size). `in_place` is accepted for compatibility and ignored: the result is always a new array.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "SCATTER"):
        super().__init__(scope)

    def run(self, x, y, axis: int, idx, in_place: bool = False):
        if isinstance(y, (int, float)):
            return self.ops.scatter(x, check_index(self.ops, "Scatter", x, axis, idx), idx, y)
        axis = check_index(self.ops, "Scatter", x, axis, idx, y)
        if tuple(y.shape) != tuple(idx.shape):  # the leading idx.shape block (torch's backward needs idx's shape)
            y = y[tuple(slice(0, n) for n in idx.shape)]
        return self.ops.scatter(x, axis, idx, y)
