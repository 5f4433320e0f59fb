"""Activation crafts on JAX."""

from __future__ import annotations

import jax

from .craft import Craft

__all__ = ["Relu"]


class Relu(Craft):
    """max(x, 0)."""

    def __init__(self, scope: str = "RELU"):
        super().__init__(scope)

    def run(self, x):
        return jax.nn.relu(x)
