"""Convolution crafts on JAX, on `jax.lax` with PyTorch's layouts (kernels OIHW, data NCHW)."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx
from jax import lax

from nebulae.astro import init as _init
from nebulae.astro import padding as _pad

from .craft import Craft
from .linear import parameter

__all__ = ["Conv"]

_DIMS = {1: ("NCH", "OIH", "NCH"), 2: ("NCHW", "OIHW", "NCHW"), 3: ("NCDHW", "OIDHW", "NCDHW")}


class FixedWeight(nnx.Variable):
    """A non-trainable constant (a fixed convolution kernel); not exported with the weights."""


def bias_shape(ndim: int) -> tuple:
    """Index that broadcasts a per-channel vector over (N, C, *spatial)."""
    return (None, slice(None)) + (None,) * ndim


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
        if self.ndim not in _DIMS:
            raise ValueError(f"Conv supports 1-, 2- and 3-D kernels, got kernel {kernel}")
        if in_chs % group or out_chs % group:
            raise ValueError(f"Conv: in_chs {in_chs} and out_chs {out_chs} must both divide by group {group}")
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
