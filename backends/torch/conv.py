"""Convolution crafts on torch (kernels stored OIHW, data NCHW)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nebulae.astro import init as _init
from nebulae.astro import padding as _pad

from .craft import Craft
from .linear import parameter

__all__ = ["Conv"]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class Conv(Craft):
    """1/2/3-D convolution chosen by `len(kernel)`; stride, padding (see nebulae.astro.padding), dilation, groups.

    A fixed array as `w_init` gives a non-trainable kernel (a buffer that is not exported).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel: tuple,
        stride=1,
        padding=0,
        dilation=1,
        group: int = 1,
        w_init=None,
        b_init=None,
        scope: str = "CONV",
    ):
        super().__init__(scope)
        self.ndim = len(kernel)
        if self.ndim not in _CONV:
            raise ValueError(f"Conv supports 1-, 2- and 3-D kernels, got kernel {kernel}")
        if in_chs % group or out_chs % group:
            raise ValueError(f"Conv: in_chs {in_chs} and out_chs {out_chs} must both divide by group {group}")
        self.stride = _pad.spatial(stride, self.ndim, "stride")
        self.dilation = _pad.spatial(dilation, self.ndim, "dilation")
        self.pairs = _pad.conv_pairs(padding, self.ndim)
        self.group = group
        shape = (out_chs, in_chs // group, *kernel)
        w_init = _init.XavierNorm() if w_init is None else w_init
        if isinstance(w_init, _init.Initializer):
            self.weight = parameter(_init.make(w_init, shape))
        else:
            self.register_buffer("weight", torch.from_numpy(_init.make(w_init, shape)), persistent=False)
        self.bias = parameter(_init.make(_init.Zeros() if b_init is None else b_init, (out_chs,)))
        self._symmetric = all(a == b and a >= 0 for a, b in self.pairs)

    def run(self, x):
        conv = _CONV[self.ndim]
        if self._symmetric:
            padding = tuple(a for a, _ in self.pairs)
        else:
            x = F.pad(x, _pad.fpad_order(self.pairs))
            padding = 0
        return conv(x, self.weight, self.bias, self.stride, padding, self.dilation, self.group)

    def weights(self):
        return self.weight
