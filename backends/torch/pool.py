"""Pooling crafts on torch: MaxPool and AvgPool, 1/2/3-D by len(kernel), global when kernel[-1] < 0."""

from __future__ import annotations

import torch.nn.functional as F

from nebulae.astro import padding as _pad
from nebulae.astro.convargs import check_window
from nebulae.astro.poolargs import pool_setup

from .craft import Craft

__all__ = ["MaxPool", "AvgPool"]

_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


class _Pool(Craft):
    def __init__(self, kernel: tuple, stride=2, padding=0, scope: str = "POOL"):
        super().__init__(scope)
        self.ndim, self.whole, self.kernel, self.stride, pairs = pool_setup(
            type(self).__name__, kernel, stride, padding
        )
        self.dims = tuple(range(-self.ndim, 0))
        if self.whole:
            return
        # torch pads symmetrically up to half the kernel itself; anything else is padded beforehand
        self.pairs = tuple(pairs)
        self.native = all(a == b and a <= k // 2 for (a, b), k in zip(pairs, self.kernel))
        self.padding = tuple(a for a, _ in pairs) if self.native else 0
        self.fpad = None if self.native else _pad.fpad_order(pairs)


class MaxPool(_Pool):
    """Max pooling, 1/2/3-D by len(kernel); padding as Conv reads it (padded with -inf); kernel[-1] < 0: global max.

    A kernel larger than the padded input is a ValueError.
    """

    def __init__(self, kernel: tuple, stride=2, padding=0, scope: str = "MPOOL"):
        super().__init__(kernel, stride, padding, scope)

    def run(self, x):
        if self.whole:
            return x.amax(self.dims, keepdim=True)
        check_window(type(self).__name__, x.shape[x.ndim - self.ndim :], self.kernel, self.pairs)
        if self.fpad is not None:
            x = F.pad(x, self.fpad, value=float("-inf"))
        return _MAX[self.ndim](x, self.kernel, self.stride, self.padding)


class AvgPool(_Pool):
    """Average pooling, 1/2/3-D by len(kernel); padding as Conv reads it (zeros, counted in the average, as torch's
    count_include_pad=True); kernel[-1] < 0: global average. A kernel larger than the padded input is a ValueError."""

    def __init__(self, kernel: tuple, stride=2, padding=0, scope: str = "APOOL"):
        super().__init__(kernel, stride, padding, scope)

    def run(self, x):
        if self.whole:
            return x.mean(self.dims, keepdim=True)
        check_window(type(self).__name__, x.shape[x.ndim - self.ndim :], self.kernel, self.pairs)
        if self.fpad is not None:
            x = F.pad(x, self.fpad)
        return _AVG[self.ndim](x, self.kernel, self.stride, self.padding)
