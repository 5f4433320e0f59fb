"""Normalisation crafts on JAX. `mmnt` is the running-average decay (seed convention), as on torch."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx

from .craft import Craft
from .linear import parameter

__all__ = ["BN"]

EPS = 1e-5


class BN(Craft):
    """Batch normalisation over (N, C, *spatial) with running statistics; `resilient` = learnable affine."""

    def __init__(self, out_chs: int, dim: int = 2, mmnt: float = 0.9, resilient: bool = True, scope: str = "BN"):
        super().__init__(scope)
        self.out_chs, self.dim, self.mmnt = out_chs, dim, float(mmnt)
        self.weight = parameter(np.ones(out_chs, np.float32)) if resilient else None
        self.bias = parameter(np.zeros(out_chs, np.float32)) if resilient else None
        self.running_mean = nnx.BatchStat(jnp.zeros(out_chs, jnp.float32))
        self.running_var = nnx.BatchStat(jnp.ones(out_chs, jnp.float32))

    def run(self, x):
        axes = (0, *range(2, x.ndim))
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        xf = x.astype(jnp.float32)
        if self.is_training():
            mean = xf.mean(axes)
            var = jnp.mean(jnp.square(xf - mean.reshape(shape)), axes)
            n = x.size // x.shape[1]
            m = self.mmnt
            self.running_mean.set_value(m * self.running_mean.get_value() + (1 - m) * mean)
            self.running_var.set_value(m * self.running_var.get_value() + (1 - m) * var * (n / max(n - 1, 1)))
        else:
            mean, var = self.running_mean.get_value(), self.running_var.get_value()
        y = (xf - mean.reshape(shape)) * jnp.reciprocal(jnp.sqrt(var + EPS)).reshape(shape)
        if self.weight is not None:
            y = y * self.weight.get_value().reshape(shape) + self.bias.get_value().reshape(shape)
        return y.astype(x.dtype)

    def weights(self):
        return self.weight
