"""Shape and constant kernels on JAX: jax.numpy, with torch's squeeze and flatten rules."""

import math

import jax
import jax.numpy as jnp


def roll(x, shift, axis):
    return jnp.roll(x, shift, axis)


def permute(x, order):
    return jnp.transpose(x, order)


def expand_dims(x, axis):
    return jnp.expand_dims(x, axis)


def squeeze(x, axis):
    if axis is None:
        return jnp.squeeze(x)
    return jnp.squeeze(x, tuple(a for a in axis if x.shape[a] == 1))  # torch keeps a named dim of size != 1


def tile(x, times):
    return jnp.tile(x, times)


def flatten(x, start, end):
    dims = x.shape
    return jnp.reshape(x, dims[:start] + (math.prod(dims[start : end + 1]),) + dims[end + 1 :])


def concat(xs, axis):
    return jnp.concatenate(xs, axis)


def stack(xs, axis):
    return jnp.stack(xs, axis)


def full(shape, value, dtype):
    return jnp.full(shape, value, jax.dtypes.canonicalize_dtype(dtype))


def full_like(x, value):
    return jnp.full_like(x, value)
