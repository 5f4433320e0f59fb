"""The JAX/Flax NNX backend: one compiled step per craft call, optax, Orbax, sharding. Mirrors `backends/torch/`."""

from . import dock
from .tensor import devices

ENGINE = "jax"
__all__ = ["dock", "devices", "ENGINE"]
