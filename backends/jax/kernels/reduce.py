"""Reduction and indexing kernels on JAX: jax.numpy, with torch.gather/scatter as advanced indexing."""

import jax.numpy as jnp

REDUCERS = {
    "mean": jnp.mean,
    "sum": jnp.sum,
    "max": jnp.max,
    "min": jnp.min,
    "argmax": jnp.argmax,
    "argmin": jnp.argmin,
}


def reduce(how, x, axis, keep):
    return REDUCERS[how](x, axis, keepdims=keep)


def tensordot(x, y, axes):
    return jnp.tensordot(x, y, axes)


def matmul(x, y):
    return jnp.matmul(x, y)


def _grid(idx, axis):
    """Advanced-indexing tuple addressing x at (i, ..., idx[i, ...], ...) for every position i of idx."""
    index = list(jnp.indices(idx.shape, sparse=True))
    index[axis] = idx
    return tuple(index)


def gather(x, axis, idx):
    return x[_grid(idx, axis)]


def scatter(x, axis, idx, y):
    if not isinstance(y, (int, float)):
        y = y.astype(x.dtype)
    return x.at[_grid(idx, axis)].set(y)
