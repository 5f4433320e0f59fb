"""Convolution kernels on JAX, on `jax.lax` with PyTorch's layouts (kernels OIHW, data NCHW)."""

import jax.numpy as jnp
from jax import lax

from ..layout import axes_of
from .base import channel_bias, value

_DIMS = {1: ("NCH", "OIH", "NCH"), 2: ("NCHW", "OIHW", "NCHW"), 3: ("NCDHW", "OIDHW", "NCDHW")}
_STORED_DIMS = {1: ("NCH", "HIO", "NCH"), 2: ("NCHW", "HWIO", "NCHW"), 3: ("NCDHW", "DHWIO", "NCDHW")}


def conv(x, weight, bias, stride, pairs, dilation, groups):
    dims = _STORED_DIMS if axes_of(weight) else _DIMS  # a kernel declared as a conv kernel is held spatial-first
    y = lax.conv_general_dilated(
        x,
        value(weight, x),
        stride,
        pairs,
        rhs_dilation=dilation,
        dimension_numbers=dims[len(stride)],
        feature_group_count=groups,
    )
    return channel_bias(y, bias)


def trans_conv(x, weight, bias, stride, pairs, dilation, groups, size):
    # a stride-1 convolution of the stride-dilated input with the flipped, group-transposed kernel
    w = value(weight, x)
    (cin, cout_g), kernel = w.shape[:2], w.shape[2:]
    padding = []
    for n, k, s, d, (a, _), m in zip(x.shape[2:], kernel, stride, dilation, pairs, size):
        padding.append((d * (k - 1) - a, m - (n - 1) * s - 1 + a))
    w = w.reshape(groups, cin // groups, cout_g, *kernel).swapaxes(1, 2)
    w = w.reshape(groups * cout_g, cin // groups, *kernel)
    w = jnp.flip(w, axis=tuple(range(2, w.ndim)))
    y = lax.conv_general_dilated(
        x,
        w,
        (1,) * len(stride),
        padding,
        lhs_dilation=stride,
        rhs_dilation=dilation,
        dimension_numbers=_DIMS[len(stride)],
        feature_group_count=groups,
    )
    return channel_bias(y, bias)
