"""Dense and Embed on JAX: weights stored (out, in) as torch.nn.Linear stores them."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx

from nebulae.astro import init as _init
from nebulae.astro.args import check_float_input

from .craft import Craft

__all__ = ["Dense", "Embed"]


def parameter(array: np.ndarray | None) -> nnx.Param | None:
    """Wrap an initialised NumPy array as a trainable parameter (None stays None)."""
    return None if array is None else nnx.Param(jnp.asarray(array))


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
        check_float_input(jnp.issubdtype(x.dtype, jnp.floating), x.dtype, "Dense")
        moved = self.axis not in (-1, x.ndim - 1)
        if moved:
            x = jnp.moveaxis(x, self.axis, -1)
        y = x @ self.weight.get_value().astype(x.dtype).T
        if self.bias is not None:
            y = y + self.bias.get_value().astype(y.dtype)
        return jnp.moveaxis(y, -1, self.axis) if moved else y

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
        if not jnp.issubdtype(idx.dtype, jnp.integer):
            raise TypeError(f"Embed needs integer indices, got dtype {idx.dtype}")
        # a traced index cannot raise, so out-of-range indices give NaN rows instead of another token's row
        idx = jnp.where(idx < 0, self.ntoken, idx)  # jnp.take would wrap negative indices
        return jnp.take(self.weight.get_value(), idx, axis=0, mode="fill", fill_value=jnp.nan)

    def weights(self):
        return self.weight
