"""Shape and constant kernels on torch: torch's own functions, called directly."""

import torch

from ..tensor import device


def roll(x, shift, axis):
    return torch.roll(x, shift, axis)


def permute(x, order):
    return torch.permute(x, order)


def expand_dims(x, axis):
    return torch.unsqueeze(x, axis)


def squeeze(x, axis):
    return torch.squeeze(x) if axis is None else torch.squeeze(x, axis)


def tile(x, times):
    return x.repeat(times)


def flatten(x, start, end):
    return torch.flatten(x, start, end)


def concat(xs, axis):
    return torch.cat(xs, axis)


def stack(xs, axis):
    return torch.stack(xs, axis)


def full(shape, value, dtype):
    return torch.full(shape, value, dtype=getattr(torch, dtype), device=device())


def full_like(x, value):
    return torch.full_like(x, value)
