"""Convolution crafts on torch (kernels stored OIHW, data NCHW)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nebulae.astro import init as _init
from nebulae.astro import padding as _pad
from nebulae.astro.args import check_float_input
from nebulae.astro.convargs import check_window, transposed_sizes

from .craft import Craft
from .linear import parameter

__all__ = ["Conv", "TransConv"]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_TRANS = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


class Conv(Craft):
    """1/2/3-D convolution chosen by `len(kernel)`; stride, padding (see nebulae.astro.padding), dilation, groups.

    A fixed array as `w_init` gives a non-trainable kernel (a buffer that is not exported). The input must be
    floating-point (TypeError otherwise) and the dilated kernel must fit the padded input (ValueError otherwise).
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
        self.kernel = tuple(int(k) for k in kernel)
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
        check_float_input(x.is_floating_point(), x.dtype, "Conv")
        check_window("Conv", x.shape[2:], self.kernel, self.pairs, self.dilation)
        conv = _CONV[self.ndim]
        if self._symmetric:
            padding = tuple(a for a, _ in self.pairs)
        else:
            x = F.pad(x, _pad.fpad_order(self.pairs))
            padding = 0
        return conv(x, self.weight, self.bias, self.stride, padding, self.dilation, self.group)

    def weights(self):
        return self.weight


class TransConv(Craft):
    """1/2/3-D transposed convolution (the adjoint of `Conv` with the same kernel, stride, padding and dilation).

    The weight is laid out as torch's ConvTransposeNd: (in_chs, out_chs / group, *kernel). `padding` (read as
    Conv reads it, asymmetric pairs included) crops the full output: (before, after) removes `before` leading
    and `after` trailing elements. `out_size` (spatial) fixes the output size exactly, as torch's output_padding
    does: it must lie in [nominal, nominal + max(stride, dilation) - 1]; None gives the nominal size. The input
    must be floating-point (TypeError otherwise).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        out_size,
        kernel: tuple,
        stride=1,
        padding=0,
        dilation=1,
        group: int = 1,
        w_init=None,
        b_init=None,
        scope: str = "TRANSCONV",
    ):
        super().__init__(scope)
        self.ndim = len(kernel)
        if self.ndim not in _TRANS:
            raise ValueError(f"TransConv supports 1-, 2- and 3-D kernels, got kernel {kernel}")
        if in_chs % group or out_chs % group:
            raise ValueError(f"TransConv: in_chs {in_chs} and out_chs {out_chs} must both divide by group {group}")
        self.kernel = tuple(int(k) for k in kernel)
        self.stride = _pad.spatial(stride, self.ndim, "stride")
        self.dilation = _pad.spatial(dilation, self.ndim, "dilation")
        self.pairs = _pad.conv_pairs(padding, self.ndim)
        if any(p < 0 for pair in self.pairs for p in pair):
            raise ValueError(f"TransConv padding must be >= 0, got {padding}")
        self.out_size = None if out_size is None else _pad.spatial(out_size, self.ndim, "out_size")
        self.group = group
        shape = (in_chs, out_chs // group, *self.kernel)
        w_init = _init.XavierNorm() if w_init is None else w_init
        if isinstance(w_init, _init.Initializer):
            self.weight = parameter(_init.make(w_init, shape))
        else:
            self.register_buffer("weight", torch.from_numpy(_init.make(w_init, shape)), persistent=False)
        self.bias = parameter(_init.make(_init.Zeros() if b_init is None else b_init, (out_chs,)))
        self._plans: dict = {}

    def run(self, x):
        check_float_input(x.is_floating_point(), x.dtype, "TransConv")
        plan = self._plans.get(x.shape[2:])
        if plan is None:
            plan = self._plans[x.shape[2:]] = self._plan(tuple(x.shape[2:]))
        padding, extra, crop = plan
        y = _TRANS[self.ndim](x, self.weight, self.bias, self.stride, padding, extra, self.group, self.dilation)
        return y if crop is None else y[crop]

    def _plan(self, size: tuple) -> tuple:
        """torch padding and output_padding for this input size, and the slice that crops asymmetric pairs."""
        targets = transposed_sizes(size, self.kernel, self.stride, self.pairs, self.dilation, self.out_size)
        padding, extra, crop = [], [], [slice(None), slice(None)]
        for n, k, s, d, (a, b), m in zip(size, self.kernel, self.stride, self.dilation, self.pairs, targets):
            full = (n - 1) * s + d * (k - 1) + 1
            p = min(a, b)
            op = max(0, a + m + p - full)
            padding.append(p)
            extra.append(op)
            crop.append(slice(a - p, a - p + m))
        asymmetric = any(a != b for a, b in self.pairs)
        return tuple(padding), tuple(extra), (tuple(crop) if asymmetric else None)

    def weights(self):
        return self.weight
