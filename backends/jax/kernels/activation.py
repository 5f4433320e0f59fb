"""Activation kernels on JAX: jax.nn, with torch's exact GELU and softplus threshold."""

import functools

import jax
import jax.numpy as jnp

from .base import value

SOFTPLUS_THRESHOLD = 20.0  # torch's: above it softplus returns x


def _softplus(x):
    above = x > SOFTPLUS_THRESHOLD
    # the discarded branch sees 0 above the threshold, so neither it nor its gradient overflows
    return jnp.where(above, x, jnp.log1p(jnp.exp(jnp.where(above, 0.0, x))))


ACTIVATIONS = {
    "relu": jax.nn.relu,
    "gelu": functools.partial(jax.nn.gelu, approximate=False),
    "silu": jax.nn.silu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "softplus": _softplus,
}


def activate(how, x):
    return ACTIVATIONS[how](x)


def leaky_relu(x, alpha):
    return jnp.where(x > 0, x, x * alpha)


def prelu(x, weight):
    return jnp.where(x > 0, x, value(weight, x)[0] * x)


def softmax(x, axis):
    return jax.nn.softmax(x, axis=axis)


def log_softmax(x, axis):
    return jax.nn.log_softmax(x, axis=axis)
