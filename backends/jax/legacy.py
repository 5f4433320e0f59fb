"""Transitional: what not-yet-ported family modules import (removed when the last family moves to crafts/)."""

import jax.numpy as jnp
from flax import nnx

from .craft import FixedWeight  # noqa: F401

__all__: list[str] = []


def parameter(array):
    return None if array is None else nnx.Param(jnp.asarray(array))


def __getattr__(name):
    if name == "Dense":
        from nebulae.astro.crafts import linear
        from nebulae.astro.crafts.binding import bind

        from .craft import Craft

        globals()["Dense"] = bind(linear.Dense, Craft, __name__)
        return globals()["Dense"]
    raise AttributeError(name)
