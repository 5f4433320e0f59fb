"""Pooling crafts on JAX: MaxPool and AvgPool, 1/2/3-D by len(kernel), global when kernel[-1] < 0."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from nebulae.astro.convargs import check_window
from nebulae.astro.poolargs import pool_setup

from .craft import Craft

__all__ = ["MaxPool", "AvgPool"]


class _Pool(Craft):
    def __init__(self, kernel: tuple, stride=2, padding=0, scope: str = "POOL"):
        super().__init__(scope)
        self.ndim, self.whole, self.kernel, self.stride, pairs = pool_setup(
            type(self).__name__, kernel, stride, padding
        )
        self.dims = tuple(range(-self.ndim, 0))
        if not self.whole:
            self.pairs = tuple(pairs)

    def _window(self, x, init, op):
        """lax.reduce_window over the spatial dimensions, padded with `init`."""
        lead = x.ndim - self.ndim
        check_window(type(self).__name__, x.shape[lead:], self.kernel, self.pairs)
        return lax.reduce_window(
            x, init, op, (1,) * lead + self.kernel, (1,) * lead + self.stride, ((0, 0),) * lead + self.pairs
        )


class MaxPool(_Pool):
    """Max pooling, 1/2/3-D by len(kernel); padding as Conv reads it (padded with -inf); kernel[-1] < 0: global max.

    A kernel larger than the padded input is a ValueError.
    """

    def __init__(self, kernel: tuple, stride=2, padding=0, scope: str = "MPOOL"):
        super().__init__(kernel, stride, padding, scope)

    def run(self, x):
        if self.whole:
            return jnp.max(x, self.dims, keepdims=True)
        low = -jnp.inf if jnp.issubdtype(x.dtype, jnp.floating) else jnp.iinfo(x.dtype).min
        return self._window(x, np.array(low, x.dtype), lax.max)  # a NumPy init value keeps reduce_window differentiable


class AvgPool(_Pool):
    """Average pooling, 1/2/3-D by len(kernel); padding as Conv reads it (zeros, counted in the average, as torch's
    count_include_pad=True); kernel[-1] < 0: global average. A kernel larger than the padded input is a ValueError."""

    def __init__(self, kernel: tuple, stride=2, padding=0, scope: str = "APOOL"):
        super().__init__(kernel, stride, padding, scope)

    def run(self, x):
        if self.whole:
            return jnp.mean(x, self.dims, keepdims=True)
        total = self._window(x, np.zeros((), x.dtype), lax.add)  # NumPy, not jnp: jnp would be traced, losing the JVP
        return total / jnp.asarray(math.prod(self.kernel), x.dtype)
