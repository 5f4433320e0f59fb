"""Pooling kernels on torch: F.max_pool / F.avg_pool, any padding torch does not take itself applied first."""

import functools

import torch
import torch.nn.functional as F

from nebulae.astro.padding import fpad_order

_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


@functools.lru_cache(maxsize=256)
def _plan(kernel, pairs):
    """(torch's padding, F.pad list or None): torch pads symmetrically up to half the kernel itself."""
    if all(a == b and a <= k // 2 for (a, b), k in zip(pairs, kernel)):
        return tuple(a for a, _ in pairs), None
    return 0, fpad_order(pairs)


def _planned(kernel, pairs):
    """`_plan`, uncached while torch.compile traces (dynamo warns on lru_cache calls; a trace runs it once)."""
    return (_plan.__wrapped__ if torch.compiler.is_compiling() else _plan)(kernel, pairs)


def _crop(y, size):
    """The first `size` windows: padded beforehand, torch's ceil rule cannot see which padding leads."""
    if tuple(y.shape[y.ndim - len(size) :]) == size:
        return y
    return y[(...,) + tuple(slice(0, m) for m in size)]


def max_pool(x, kernel, stride, pairs, size):
    padding, fpad = _planned(kernel, pairs)
    if fpad is None:
        return _MAX[len(kernel)](x, kernel, stride, padding, ceil_mode=size is not None)
    y = _MAX[len(kernel)](F.pad(x, fpad, value=float("-inf")), kernel, stride, 0, ceil_mode=size is not None)
    return y if size is None else _crop(y, size)


def avg_pool(x, kernel, stride, pairs, size):
    padding, fpad = _planned(kernel, pairs)
    if fpad is None:
        return _AVG[len(kernel)](x, kernel, stride, padding, ceil_mode=size is not None)
    y = _AVG[len(kernel)](F.pad(x, fpad), kernel, stride, 0, ceil_mode=size is not None)
    return y if size is None else _crop(y, size)


def global_pool(x, how, axes):
    return x.amax(axes, keepdim=True) if how == "max" else x.mean(axes, keepdim=True)
