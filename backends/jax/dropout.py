"""Random crafts on JAX: Dropout (element-wise or channel-wise) and Gauss noise, driven by RNG streams in the state.

Each Dropout holds a key and a counter as Variables; every train-mode call folds the counter into
the key and advances it, so a compiled step draws a new mask every step without retracing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from nebulae.astro import init as _init

from .craft import Craft

__all__ = ["Dropout", "Gauss"]


class RngState(nnx.Variable):
    """A random stream's key data and counter (checkpointed, not exported with the weights)."""


def new_stream() -> tuple[RngState, RngState]:
    """A (key, counter) pair seeded from the initialiser stream, so `init.seed` makes it reproducible."""
    seed = _init.draw_seed()
    return RngState(jax.random.key_data(jax.random.key(seed))), RngState(jnp.zeros((), jnp.uint32))


def draw(key: RngState, count: RngState) -> jax.Array:
    """The next key of a stream (advances its counter)."""
    n = count.get_value()
    count.set_value(n + 1)
    return jax.random.fold_in(jax.random.wrap_key_data(key.get_value()), n)


class Dropout(Craft):
    """Zero elements (dim=1) or whole channels (dim=2, 3) with probability `p_drop`, scaling the rest by 1/(1-p)."""

    def __init__(self, p_drop: float, dim: int = 1, scope: str = "DROPOUT"):
        super().__init__(scope)
        if not 0.0 <= p_drop < 1.0:
            raise ValueError(f"Dropout p_drop must be in [0, 1), got {p_drop}")
        if dim not in (1, 2, 3):
            raise ValueError(f"Dropout dim must be 1 (element-wise), 2 or 3 (channel-wise), got {dim}")
        self.p_drop, self.dim = float(p_drop), dim
        self.key, self.count = new_stream()

    def run(self, x):
        if not self.is_training() or self.p_drop == 0.0:
            return x
        shape = x.shape if self.dim == 1 else x.shape[:2] + (1,) * (x.ndim - 2)
        keep = jax.random.bernoulli(draw(self.key, self.count), 1.0 - self.p_drop, shape)
        return jnp.where(keep, x / (1.0 - self.p_drop), jnp.zeros_like(x))


class Gauss(Craft):
    """Standard normal noise shaped like `x` (its dtype too), drawn anew on every call, in any mode.

    As Dropout: on JAX from the craft's own stream (seeded from the initialiser stream), on torch from
    torch's global RNG; the two engines' draws differ. Used for reparameterised sampling (VAE).
    """

    def __init__(self, scope: str = "GAUSS"):
        super().__init__(scope)
        self.key, self.count = new_stream()

    def run(self, x):
        return jax.random.normal(draw(self.key, self.count), x.shape, x.dtype)
