"""Padding conventions shared by both engines: autoPad ("SAME") and how Conv/pooling read padding.

A padding argument is one of:
- an int p: p on both sides of every spatial dimension;
- a list of `dim` ints: symmetric padding per dimension, in natural order (H, W) as torch takes it;
- a list of `2·dim` ints in F.pad order, last dimension first: (left, right, top, bottom, front, back).
`autoPad` returns the last form, and every craft reads it the same way, so non-square kernels get
the right padding (the original's reversed-order bug does not return).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _per_dim(value, ndim: int, what: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * ndim
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * ndim
    if len(value) != ndim:
        raise ValueError(f"{what} needs 1 or {ndim} values for a {ndim}-D kernel, got {value}")
    return value


def autoPad(in_size: Sequence[int] | None, kernel: Sequence[int], stride=1, dilation=1) -> list[int]:
    """Padding that keeps the size at stride 1 ('SAME'; output ceil(n/stride)), in F.pad order.

    `in_size` is the spatial size, e.g. (h, w); with None the padding assumes a size divisible
    by the stride. Each total is split before = total // 2, after = the rest (the extra pixel goes
    after: right/bottom/back). Returns (left, right, top, bottom, front, back)-style lists.
    """
    ndim = len(kernel)
    stride, dilation = _per_dim(stride, ndim, "stride"), _per_dim(dilation, ndim, "dilation")
    sizes = [None] * ndim if in_size is None else _per_dim(tuple(in_size), ndim, "in_size")
    pairs = []
    for n, k, s, d in zip(sizes, kernel, stride, dilation):
        effective = k + (d - 1) * (k - 1)
        total = effective - s if n is None else (math.ceil(n / s) - 1) * s + effective - n
        total = max(total, 0)
        pairs.append((total // 2, total - total // 2))
    return [p for pair in reversed(pairs) for p in pair]


def conv_pairs(padding, ndim: int) -> list[tuple[int, int]]:
    """Read a padding argument as [(before, after)] per spatial dimension in natural order."""
    if isinstance(padding, int):
        return [(padding, padding)] * ndim
    padding = [int(p) for p in padding]
    if len(padding) == ndim:
        return [(p, p) for p in padding]
    if len(padding) == 2 * ndim:
        pairs = [(padding[2 * i], padding[2 * i + 1]) for i in range(ndim)]
        return pairs[::-1]
    raise ValueError(f"padding needs an int, {ndim} values or {2 * ndim} values (F.pad order), got {padding}")


def fpad_order(pairs: list[tuple[int, int]]) -> list[int]:
    """[(before, after)] in natural order -> the flat F.pad order (last dimension first)."""
    return [p for pair in reversed(pairs) for p in pair]


def spatial(value, ndim: int, what: str) -> tuple[int, ...]:
    """An int or per-dimension sequence (stride, dilation) as a tuple of `ndim` ints."""
    return _per_dim(value, ndim, what)
