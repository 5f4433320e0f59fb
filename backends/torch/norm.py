"""Normalisation crafts on torch. `mmnt` is the running-average decay (seed convention): torch momentum = 1 - mmnt."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .craft import Craft
from .linear import parameter

__all__ = ["BN"]

EPS = 1e-5


class BN(Craft):
    """Batch normalisation over (N, C, *spatial) with running statistics; `resilient` = learnable affine."""

    def __init__(self, out_chs: int, dim: int = 2, mmnt: float = 0.9, resilient: bool = True, scope: str = "BN"):
        super().__init__(scope)
        self.out_chs, self.dim, self.mmnt = out_chs, dim, float(mmnt)
        self.weight = parameter(torch.ones(out_chs).numpy()) if resilient else None
        self.bias = parameter(torch.zeros(out_chs).numpy()) if resilient else None
        self.register_buffer("running_mean", torch.zeros(out_chs))
        self.register_buffer("running_var", torch.ones(out_chs))

    def run(self, x):
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, self.is_training(), 1.0 - self.mmnt, EPS
        )

    def weights(self):
        return self.weight
