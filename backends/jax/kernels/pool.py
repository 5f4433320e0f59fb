"""Pooling kernels on JAX: lax.reduce_window over the trailing dimensions."""

import functools
import math

import jax.numpy as jnp
import numpy as np
from jax import lax


def _window(x, init, op, kernel, stride, pairs, size):
    """reduce_window padded with `init`; for a ceil_mode `size` the trailing padding reaches its last window."""
    lead = x.ndim - len(kernel)
    if size is not None:
        spatial = x.shape[lead:]
        pairs = tuple(
            (a, max(b, (m - 1) * s + k - n - a)) for n, k, s, (a, b), m in zip(spatial, kernel, stride, pairs, size)
        )
    y = lax.reduce_window(x, init, op, (1,) * lead + kernel, (1,) * lead + stride, ((0, 0),) * lead + pairs)
    if size is not None and tuple(y.shape[lead:]) != size:  # a window past the input and its leading padding
        y = y[(...,) + tuple(slice(0, m) for m in size)]
    return y


def max_pool(x, kernel, stride, pairs, size):
    low = -jnp.inf if jnp.issubdtype(x.dtype, jnp.floating) else jnp.iinfo(x.dtype).min
    # a NumPy init value keeps reduce_window differentiable
    return _window(x, np.array(low, x.dtype), lax.max, kernel, stride, pairs, size)


@functools.lru_cache(maxsize=256)
def _counts(spatial, kernel, stride, pairs, size):
    """Each ceil_mode window's element count within the padded input, shaped to broadcast over the output."""
    counts = np.ones((), np.float64)
    for n, k, s, (a, b), m in zip(spatial, kernel, stride, pairs, size):
        starts = np.arange(m) * s
        counts = np.multiply.outer(counts, np.minimum(starts + k, n + a + b) - starts)
    return counts


def avg_pool(x, kernel, stride, pairs, size):
    total = _window(x, np.zeros((), x.dtype), lax.add, kernel, stride, pairs, size)  # NumPy: jnp would lose the JVP
    if size is None:
        return total / jnp.asarray(math.prod(kernel), x.dtype)
    return total / jnp.asarray(_counts(tuple(x.shape[x.ndim - len(kernel) :]), kernel, stride, pairs, size), x.dtype)


def global_pool(x, how, axes):
    return jnp.max(x, axes, keepdims=True) if how == "max" else jnp.mean(x, axes, keepdims=True)
