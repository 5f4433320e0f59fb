"""Dropout and noise kernels on JAX: draws from each craft's (key, counter) stream, a new key per call."""

import jax
import jax.numpy as jnp
from flax import nnx

from nebulae.astro import init as _init


class RngState(nnx.Variable):
    """A random stream's key data and counter (checkpointed, not exported with the weights)."""


def dropout_stream():
    key = jax.random.key_data(jax.random.key(_init.draw_seed()))
    return RngState(key), RngState(jnp.zeros((), jnp.uint32))


def _draw(stream):
    key, count = stream
    n = count.get_value()
    count.set_value(n + 1)
    return jax.random.fold_in(jax.random.wrap_key_data(key.get_value()), n)


def dropout(x, p, dim, stream):
    shape = x.shape if dim == 1 else x.shape[:2] + (1,) * (x.ndim - 2)
    keep = jax.random.bernoulli(_draw(stream), 1.0 - p, shape)
    return jnp.where(keep, x / (1.0 - p), jnp.zeros_like(x))


def gauss(x, stream):
    return jax.random.normal(_draw(stream), x.shape, x.dtype)
