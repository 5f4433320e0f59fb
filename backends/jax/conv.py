"""Convolution crafts on JAX, on `jax.lax` with PyTorch's layouts (kernels OIHW, data NCHW)."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx
from jax import lax

from nebulae.astro import init as _init
from nebulae.astro import padding as _pad
from nebulae.astro.args import check_float_input
from nebulae.astro.convargs import check_window, transposed_sizes

from .craft import Craft
from .linear import parameter

__all__ = ["Conv", "TransConv"]

_DIMS = {1: ("NCH", "OIH", "NCH"), 2: ("NCHW", "OIHW", "NCHW"), 3: ("NCDHW", "OIDHW", "NCDHW")}


class FixedWeight(nnx.Variable):
    """A non-trainable constant (a fixed convolution kernel); not exported with the weights."""


def bias_shape(ndim: int) -> tuple:
    """Index that broadcasts a per-channel vector over (N, C, *spatial)."""
    return (None, slice(None)) + (None,) * ndim


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
        if self.ndim not in _DIMS:
            raise ValueError(f"Conv supports 1-, 2- and 3-D kernels, got kernel {kernel}")
        if in_chs % group or out_chs % group:
            raise ValueError(f"Conv: in_chs {in_chs} and out_chs {out_chs} must both divide by group {group}")
        self.kernel = tuple(int(k) for k in kernel)
        self.stride = _pad.spatial(stride, self.ndim, "stride")
        self.dilation = _pad.spatial(dilation, self.ndim, "dilation")
        self.pairs = tuple(_pad.conv_pairs(padding, self.ndim))
        self.group = group
        shape = (out_chs, in_chs // group, *kernel)
        w_init = _init.XavierNorm() if w_init is None else w_init
        if isinstance(w_init, _init.Initializer):
            self.weight = parameter(_init.make(w_init, shape))
        else:
            self.weight = FixedWeight(jnp.asarray(_init.make(w_init, shape)))
        self.bias = parameter(_init.make(_init.Zeros() if b_init is None else b_init, (out_chs,)))

    def run(self, x):
        check_float_input(jnp.issubdtype(x.dtype, jnp.floating), x.dtype, "Conv")
        check_window("Conv", x.shape[2:], self.kernel, self.pairs, self.dilation)
        w = self.weight.get_value().astype(x.dtype)
        y = lax.conv_general_dilated(
            x,
            w,
            self.stride,
            self.pairs,
            rhs_dilation=self.dilation,
            dimension_numbers=_DIMS[self.ndim],
            feature_group_count=self.group,
        )
        if self.bias is not None:
            y = y + self.bias.get_value().astype(y.dtype)[bias_shape(self.ndim)]
        return y

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
        if self.ndim not in _DIMS:
            raise ValueError(f"TransConv supports 1-, 2- and 3-D kernels, got kernel {kernel}")
        if in_chs % group or out_chs % group:
            raise ValueError(f"TransConv: in_chs {in_chs} and out_chs {out_chs} must both divide by group {group}")
        self.kernel = tuple(int(k) for k in kernel)
        self.stride = _pad.spatial(stride, self.ndim, "stride")
        self.dilation = _pad.spatial(dilation, self.ndim, "dilation")
        self.pairs = tuple(_pad.conv_pairs(padding, self.ndim))
        if any(p < 0 for pair in self.pairs for p in pair):
            raise ValueError(f"TransConv padding must be >= 0, got {padding}")
        self.out_size = None if out_size is None else _pad.spatial(out_size, self.ndim, "out_size")
        self.group = group
        shape = (in_chs, out_chs // group, *self.kernel)
        w_init = _init.XavierNorm() if w_init is None else w_init
        if isinstance(w_init, _init.Initializer):
            self.weight = parameter(_init.make(w_init, shape))
        else:
            self.weight = FixedWeight(jnp.asarray(_init.make(w_init, shape)))
        self.bias = parameter(_init.make(_init.Zeros() if b_init is None else b_init, (out_chs,)))

    def run(self, x):
        check_float_input(jnp.issubdtype(x.dtype, jnp.floating), x.dtype, "TransConv")
        size = x.shape[2:]
        targets = transposed_sizes(size, self.kernel, self.stride, self.pairs, self.dilation, self.out_size)
        # a stride-1 convolution of the stride-dilated input with the flipped, group-transposed kernel
        padding = []
        for n, k, s, d, (a, _), m in zip(size, self.kernel, self.stride, self.dilation, self.pairs, targets):
            before = d * (k - 1) - a
            padding.append((before, m - (n - 1) * s - 1 + a))
        w = self.weight.get_value().astype(x.dtype)
        g, (cin, cout_g) = self.group, w.shape[:2]
        w = w.reshape(g, cin // g, cout_g, *self.kernel).swapaxes(1, 2).reshape(g * cout_g, cin // g, *self.kernel)
        w = jnp.flip(w, axis=tuple(range(2, 2 + self.ndim)))
        y = lax.conv_general_dilated(
            x,
            w,
            (1,) * self.ndim,
            padding,
            lhs_dilation=self.stride,
            rhs_dilation=self.dilation,
            dimension_numbers=_DIMS[self.ndim],
            feature_group_count=g,
        )
        if self.bias is not None:
            y = y + self.bias.get_value().astype(y.dtype)[bias_shape(self.ndim)]
        return y

    def weights(self):
        return self.weight
