"""Dtype queries and parameter handling shared by the JAX kernels."""

import jax.numpy as jnp
from flax import nnx


def is_floating(x) -> bool:
    return jnp.issubdtype(x.dtype, jnp.floating)


def dtype_name(x) -> str:
    return str(x.dtype)


def value(v, like=None):
    """The array of a Variable (or array), cast to `like`'s dtype (mixed precision) when given; None stays None."""
    if v is None:
        return None
    if isinstance(v, nnx.Variable):
        v = v.get_value()
    return v if like is None else v.astype(like.dtype)


def channel_bias(y, bias):
    """y + bias broadcast over axis 1 of an (N, C, *spatial) array; no bias leaves y as it is."""
    if bias is None:
        return y
    return y + value(bias, y).reshape((1, -1) + (1,) * (y.ndim - 2))
