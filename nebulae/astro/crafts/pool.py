"""Pooling: MaxPool and AvgPool, 1/2/3-D by the kernel's length, global when kernel[-1] < 0, as torch.nn's
MaxPoolNd / AvgPoolNd (with padding read as Conv reads it, asymmetric pairs included)."""

from __future__ import annotations

import functools
from typing import Any, Protocol

from nebulae.astro import padding as _pad

from .conv import check_window

__all__ = ["MaxPool", "AvgPool"]


class Kernels(Protocol):
    def max_pool(self, x: Any, kernel: tuple, stride: tuple, pairs: tuple, size: tuple | None) -> Any:
        """Max over windows of the trailing len(kernel) dims of `x`, padded (before, after) with -inf; `size`: the
        ceil_mode output size (windows clipped to the padded input), None: floor mode."""

    def avg_pool(self, x: Any, kernel: tuple, stride: tuple, pairs: tuple, size: tuple | None) -> Any:
        """Mean over windows as `max_pool`'s, the zero padding counted (count_include_pad), a ceil_mode window's
        part past the padded input not."""

    def global_pool(self, x: Any, how: str, axes: tuple) -> Any:
        """The 'max' or 'mean' of `x` over `axes`, kept as size-1 axes."""


def pool_window(kernel, what: str) -> tuple[tuple[int, ...], bool]:
    """(kernel tuple, global?): an int k is the 2-D (k, k) as torch's MaxPool2d reads it; kernel[-1] < 0: global."""
    kernel = (int(kernel), int(kernel)) if isinstance(kernel, int) else tuple(int(k) for k in kernel)
    if len(kernel) not in (1, 2, 3):
        raise ValueError(f"{what} supports 1-, 2- and 3-D kernels, got kernel {kernel}")
    if kernel[-1] < 0:
        return kernel, True
    if min(kernel) < 1:
        raise ValueError(f"{what} kernel sizes must be >= 1 (or kernel[-1] < 0 for global pooling), got {kernel}")
    return kernel, False


@functools.lru_cache(maxsize=256)
def ceil_sizes(size: tuple, kernel: tuple, stride: tuple, pairs: tuple) -> tuple[int, ...]:
    """The ceil_mode output size, with torch's rule: the last window must start inside the input or the
    leading padding (else it is dropped)."""
    out = []
    for n, k, s, (a, b) in zip(size, kernel, stride, pairs):
        m = -(-(n + a + b - k) // s) + 1
        if (m - 1) * s >= n + a:
            m -= 1
        out.append(m)
    return tuple(out)


class _Pool:
    """What MaxPool and AvgPool share: the window arguments and the size checks."""

    def _setup(self, what: str, kernel, stride, padding, ceil_mode: bool) -> None:
        self.kernel, self.whole = pool_window(kernel, what)
        ndim = len(self.kernel)
        self.dims = tuple(range(-ndim, 0))
        self.padding = tuple(padding) if isinstance(padding, list) else padding  # hashable: static on JAX
        self.ceil_mode = bool(ceil_mode)
        if self.whole:
            self.stride, self.pairs = stride, None
            return
        self.stride = self.kernel if stride is None else _pad.spatial(stride, ndim, "stride")
        self.pairs = tuple(_pad.conv_pairs(padding, ndim))
        if any(p < 0 for pair in self.pairs for p in pair):
            raise ValueError(f"{what} padding must be >= 0, got {padding}")

    def _size(self, x, what: str):
        """The ceil_mode output size of `x` (None in floor mode), after checking the kernel fits."""
        size = tuple(x.shape[x.ndim - len(self.kernel) :])
        check_window(what, size, self.kernel, self.pairs)
        return ceil_sizes(size, self.kernel, self.stride, self.pairs) if self.ceil_mode else None


class MaxPool(_Pool):
    """Max pooling, 1/2/3-D by len(kernel), as torch.nn.MaxPool1d/2d/3d; kernel[-1] < 0: the global max.

    Args:
        kernel: the window: a tuple of 1-3 ints, or one int k for the 2-D (k, k); kernel[-1] < 0 pools
            globally (one value per channel, spatial axes kept with size 1).
        stride: an int or one int per spatial dimension; default the kernel, as torch.
        padding: read as Conv reads it (an int, one int per dimension, or F.pad order; >= 0), padded with -inf.
        ceil_mode: round the output size up as torch's ceil_mode (the last window must start inside the
            input or the leading padding); default floor.
        scope: the name of this craft in checkpoints and summaries.

    A kernel larger than the padded input is a ValueError.
    """

    def __init__(
        self,
        kernel: int | tuple,
        stride: int | tuple | None = None,
        padding: int | tuple = 0,
        ceil_mode: bool = False,
        scope: str = "MPOOL",
    ):
        super().__init__(scope)
        self._setup("MaxPool", kernel, stride, padding, ceil_mode)

    def run(self, x):
        if self.whole:
            return self.ops.global_pool(x, "max", self.dims)
        return self.ops.max_pool(x, self.kernel, self.stride, self.pairs, self._size(x, "MaxPool"))


class AvgPool(_Pool):
    """Average pooling, 1/2/3-D by len(kernel), as torch.nn.AvgPool1d/2d/3d; kernel[-1] < 0: the global average.

    Padding zeros count in the average (torch's count_include_pad=True), the part of a ceil_mode window past
    the padded input does not (as torch).

    Args:
        kernel: the window: a tuple of 1-3 ints, or one int k for the 2-D (k, k); kernel[-1] < 0 pools
            globally (one value per channel, spatial axes kept with size 1).
        stride: an int or one int per spatial dimension; default the kernel, as torch.
        padding: read as Conv reads it (an int, one int per dimension, or F.pad order; >= 0), zeros.
        ceil_mode: round the output size up as torch's ceil_mode (the last window must start inside the
            input or the leading padding); default floor.
        scope: the name of this craft in checkpoints and summaries.

    A kernel larger than the padded input is a ValueError.
    """

    def __init__(
        self,
        kernel: int | tuple,
        stride: int | tuple | None = None,
        padding: int | tuple = 0,
        ceil_mode: bool = False,
        scope: str = "APOOL",
    ):
        super().__init__(scope)
        self._setup("AvgPool", kernel, stride, padding, ceil_mode)

    def run(self, x):
        if self.whole:
            return self.ops.global_pool(x, "mean", self.dims)
        return self.ops.avg_pool(x, self.kernel, self.stride, self.pairs, self._size(x, "AvgPool"))
