"""Convolution kernels on torch (kernels OIHW, data NCHW)."""

import functools

import torch.nn.functional as F

from nebulae.astro.padding import fpad_order

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_TRANS = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def conv(x, weight, bias, stride, pairs, dilation, groups):
    if all(a == b and a >= 0 for a, b in pairs):
        padding = tuple(a for a, _ in pairs)
    else:
        x, padding = F.pad(x, fpad_order(pairs)), 0
    return _CONV[len(stride)](x, weight, bias, stride, padding, dilation, groups)


def trans_conv(x, weight, bias, stride, pairs, dilation, groups, size):
    padding, extra, crop = _plan(tuple(x.shape[2:]), tuple(weight.shape[2:]), stride, pairs, dilation, size)
    y = _TRANS[len(stride)](x, weight, bias, stride, padding, extra, groups, dilation)
    return y if crop is None else y[crop]


@functools.lru_cache(maxsize=256)
def _plan(n_in, kernel, stride, pairs, dilation, size):
    """torch's padding and output_padding for this input size, and the slice that crops asymmetric pairs."""
    padding, extra, crop = [], [], [slice(None), slice(None)]
    for n, k, s, d, (a, b), m in zip(n_in, kernel, stride, dilation, pairs, size):
        full = (n - 1) * s + d * (k - 1) + 1
        p = min(a, b)
        padding.append(p)
        extra.append(max(0, a + m + p - full))
        crop.append(slice(a - p, a - p + m))
    asymmetric = any(a != b for a, b in pairs)
    return tuple(padding), tuple(extra), (tuple(crop) if asymmetric else None)
