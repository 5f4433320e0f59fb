"""Reduction and indexing crafts on torch: Mean, Max, Min, Argmax, Argmin, Sum, Dot, Gather, Scatter.

Reductions are called `(x, axis=None, reduce=True)`: no axis reduces everything; an axis (int or
tuple; Argmax/Argmin take one int) reduces those dims, and `reduce=False` keeps them with size 1.
Max and Min return values only on both engines (use Argmax/Argmin for indices). Indices are int64
on torch and int32 on JAX (JAX runs without 64-bit types).
"""

from __future__ import annotations

import torch

from nebulae.astro.reduceargs import check_axis as _axis
from nebulae.astro.reduceargs import tensordot_axes as _tensordot_axes

from .craft import Craft

__all__ = ["Mean", "Max", "Min", "Argmax", "Argmin", "Sum", "Dot", "Gather", "Scatter"]


class Mean(Craft):
    """Arithmetic mean over `axis` (all elements when None); `reduce=False` keeps the reduced dims."""

    def __init__(self, scope: str = "MEAN"):
        super().__init__(scope)

    def run(self, x, axis: int | tuple[int, ...] | None = None, reduce: bool = True):
        axis = _axis("Mean", axis, reduce)
        return torch.mean(x) if axis is None else torch.mean(x, axis, keepdim=not reduce)


class Sum(Craft):
    """Sum over `axis` (all elements when None); `reduce=False` keeps the reduced dims."""

    def __init__(self, scope: str = "SUM"):
        super().__init__(scope)

    def run(self, x, axis: int | tuple[int, ...] | None = None, reduce: bool = True):
        axis = _axis("Sum", axis, reduce)
        return torch.sum(x) if axis is None else torch.sum(x, axis, keepdim=not reduce)


class Max(Craft):
    """Maximum VALUES over `axis` (all elements when None); use Argmax for indices. Ties share the gradient."""

    def __init__(self, scope: str = "MAX"):
        super().__init__(scope)

    def run(self, x, axis: int | tuple[int, ...] | None = None, reduce: bool = True):
        axis = _axis("Max", axis, reduce)
        return torch.amax(x) if axis is None else torch.amax(x, axis, keepdim=not reduce)


class Min(Craft):
    """Minimum VALUES over `axis` (all elements when None); use Argmin for indices. Ties share the gradient."""

    def __init__(self, scope: str = "MIN"):
        super().__init__(scope)

    def run(self, x, axis: int | tuple[int, ...] | None = None, reduce: bool = True):
        axis = _axis("Min", axis, reduce)
        return torch.amin(x) if axis is None else torch.amin(x, axis, keepdim=not reduce)


class Argmax(Craft):
    """Index of the first maximum along one `axis` (into the flattened array when None)."""

    def __init__(self, scope: str = "ARGMAX"):
        super().__init__(scope)

    def run(self, x, axis: int | None = None, reduce: bool = True):
        axis = _axis("Argmax", axis, reduce, single=True)
        return torch.argmax(x) if axis is None else torch.argmax(x, axis, keepdim=not reduce)


class Argmin(Craft):
    """Index of the first minimum along one `axis` (into the flattened array when None)."""

    def __init__(self, scope: str = "ARGMIN"):
        super().__init__(scope)

    def run(self, x, axis: int | None = None, reduce: bool = True):
        axis = _axis("Argmin", axis, reduce, single=True)
        return torch.argmin(x) if axis is None else torch.argmin(x, axis, keepdim=not reduce)


class Dot(Craft):
    """Tensor product: tensordot over `axes` if given, else batched (B,n,k)@(B,k,m) when `in_batch`, else matmul.

    `axes` is an int n (the last n dims of x against the first n of y) or a pair (x axes, y axes). The
    plain product follows matmul's rules (1-D operands, broadcast leading batch dims).
    """

    def __init__(self, scope: str = "DOT"):
        super().__init__(scope)

    def run(self, x, y, axes: int | tuple = (), in_batch: bool = False):
        if isinstance(axes, int) or len(axes):
            if in_batch:
                raise ValueError("Dot: in_batch does not apply when axes are given (tensordot)")
            axes = _tensordot_axes(axes)
            return torch.tensordot(x, y, axes)
        if in_batch:
            if x.ndim != 3 or y.ndim != 3 or x.shape[0] != y.shape[0]:
                raise ValueError(
                    f"Dot(in_batch=True) needs (B, n, k) and (B, k, m), got {tuple(x.shape)} and {tuple(y.shape)}"
                )
            return torch.bmm(x, y)
        return torch.matmul(x, y)


def _check_index(name: str, x, axis: int, idx, y=None) -> None:
    """The shape rules of torch.gather / torch.scatter, as a ValueError that names what is wrong."""
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{name}: axis {axis} is out of range for a {x.ndim}-D array")
    if idx.ndim != x.ndim:
        raise ValueError(f"{name}: idx must have as many dims as x ({x.ndim}), got shape {tuple(idx.shape)}")
    axis %= x.ndim
    if any(i > s for d, (i, s) in enumerate(zip(idx.shape, x.shape)) if d != axis):
        raise ValueError(f"{name}: idx {tuple(idx.shape)} is larger than x {tuple(x.shape)} off axis {axis}")
    if y is not None and (y.ndim != x.ndim or any(i > s for i, s in zip(idx.shape, y.shape))):
        raise ValueError(f"{name}: y {tuple(y.shape)} must be at least as large as idx {tuple(idx.shape)} in every dim")
    if idx.dtype.is_floating_point or idx.dtype.is_complex:
        raise TypeError(f"{name}: idx must be an integer array, got {idx.dtype}")


class Gather(Craft):
    """out[i][j][k] = x[i][idx[i][j][k]][k] for axis 1 (torch.gather): idx has x's rank, sizes <= x's off `axis`.

    Indices must lie in [0, size): torch raises on others; JAX cannot check values inside a compiled step.
    """

    def __init__(self, scope: str = "GATHER"):
        super().__init__(scope)

    def run(self, x, axis: int, idx):
        _check_index("Gather", x, axis, idx)
        return torch.gather(x, axis, idx.long())


class Scatter(Craft):
    """Out-of-place torch.scatter: a copy of x with out[i][idx[i][j][k]][k] = y[i][j][k] for axis 1.

    `y` is an array at least as large as idx in every dim (its leading idx.shape block is used) or a
    number. Duplicate indices leave an unspecified winner on both engines; indices must lie in
    [0, size). `in_place` is accepted for compatibility and ignored: the result is always a new array.
    """

    def __init__(self, scope: str = "SCATTER"):
        super().__init__(scope)

    def run(self, x, y, axis: int, idx, in_place: bool = False):
        if isinstance(y, torch.Tensor):
            _check_index("Scatter", x, axis, idx, y)
            if y.shape != idx.shape:  # torch's own backward fails for a src larger than the index
                y = y[tuple(slice(0, n) for n in idx.shape)]
            return torch.scatter(x, axis, idx.long(), y.to(x.dtype))
        _check_index("Scatter", x, axis, idx)
        return torch.scatter(x, axis, idx.long(), y)
