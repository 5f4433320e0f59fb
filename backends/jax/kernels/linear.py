"""Dense and Embed kernels on JAX: weights stored (out, in) as torch.nn.Linear stores them."""

import jax.numpy as jnp

from .base import value


def dense(x, weight, bias, axis):
    moved = axis not in (-1, x.ndim - 1)
    if moved:
        x = jnp.moveaxis(x, axis, -1)
    y = x @ value(weight, x).T
    if bias is not None:
        y = y + value(bias, y)
    return jnp.moveaxis(y, -1, axis) if moved else y


def embed(idx, weight):
    # a traced index cannot raise: out-of-range indices give NaN rows, not another token's row
    table = value(weight)
    idx = jnp.where(idx < 0, table.shape[0], idx)  # jnp.take would wrap negative indices
    return jnp.take(table, idx, axis=0, mode="fill", fill_value=jnp.nan)
