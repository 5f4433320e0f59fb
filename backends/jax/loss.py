"""Losses on JAX (mean-reduced, computed in float32). Class scores sit on axis 1, as in torch."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .craft import Craft

__all__ = ["MSE", "SftmXE"]


class MSE(Craft):
    """Mean squared error."""

    def __init__(self, scope: str = "MSE"):
        super().__init__(scope)

    def run(self, x, y):
        return jnp.mean(jnp.square(x.astype(jnp.float32) - y.astype(jnp.float32)))


class SftmXE(Craft):
    """Softmax cross-entropy on logits (N, C, ...): integer labels (N, ...) or soft/one-hot labels shaped like x."""

    def __init__(self, scope: str = "SFTMXE"):
        super().__init__(scope)

    def run(self, x, y):
        logp = jax.nn.log_softmax(x.astype(jnp.float32), axis=1)
        if jnp.issubdtype(y.dtype, jnp.floating):
            if y.shape != x.shape:
                raise ValueError(f"SftmXE: soft labels must have the logits' shape {x.shape}, got {y.shape}")
            return -jnp.mean(jnp.sum(y.astype(jnp.float32) * logp, axis=1))
        picked = jnp.take_along_axis(logp, jnp.expand_dims(y.astype(jnp.int32), 1), axis=1)
        return -jnp.mean(picked)
