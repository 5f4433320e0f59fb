"""Dense and Embed on torch: weights stored (out, in) as torch.nn.Linear stores them."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nebulae.astro import init as _init
from nebulae.astro.args import check_float_input

from .craft import Craft

__all__ = ["Dense", "Embed"]


def parameter(array: np.ndarray | None) -> nn.Parameter | None:
    """Wrap an initialised NumPy array as a trainable parameter (None stays None)."""
    return None if array is None else nn.Parameter(torch.from_numpy(np.ascontiguousarray(array)))


class Dense(Craft):
    """Fully connected layer y = x W^T + b over axis `axis` (default last); W has shape (out_chs, in_chs).

    The input must be floating-point (an integer batch is refused with a TypeError on both engines).
    """

    def __init__(self, in_chs: int, out_chs: int, axis: int = -1, w_init=None, b_init=None, scope: str = "DENSE"):
        super().__init__(scope)
        self.in_chs, self.out_chs, self.axis = in_chs, out_chs, axis
        self.weight = parameter(_init.make(w_init or _init.XavierNorm(), (out_chs, in_chs)))
        self.bias = parameter(_init.make(b_init or _init.Zeros(), (out_chs,)))

    def run(self, x):
        check_float_input(x.is_floating_point(), x.dtype, "Dense")
        if self.axis in (-1, x.ndim - 1):
            return F.linear(x, self.weight, self.bias)
        return F.linear(x.movedim(self.axis, -1), self.weight, self.bias).movedim(-1, self.axis)

    def weights(self):
        return self.weight


class Embed(Craft):
    """Embedding lookup: integer indices (any shape) -> rows of `weight` (ntoken, token_dim), as torch.nn.Embedding.

    `weight` is initialised N(0, 1) as torch's; an index outside [0, ntoken) is an error on torch and NaN rows on JAX.
    """

    def __init__(self, ntoken: int, token_dim: int, w_init=None, scope: str = "EMBED"):
        super().__init__(scope)
        self.ntoken, self.token_dim = ntoken, token_dim
        self.weight = parameter(_init.make(w_init or _init.Normal(), (ntoken, token_dim)))

    def run(self, idx):
        return F.embedding(idx, self.weight)

    def weights(self):
        return self.weight
