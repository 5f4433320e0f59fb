"""The JAX/Flax NNX backend: one compiled step per craft call, optax, Orbax, sharding. Implements
`nebulae.backend.Backend`."""

from .. import lazy_parts
from . import cache, dock, hangar, kernels, tensor
from .tensor import devices, set_float32

cache.enable()

ENGINE = "jax"
manual_seed = None  # no global generator: each random craft owns a key drawn from the initialiser stream
__all__ = ["ENGINE", "dock", "tensor", "anchor", "universe", "summary", "kernels", "hangar", "devices", "set_float32"]
__getattr__ = lazy_parts(__name__, ("anchor", "universe", "summary"))  # Orbax and the mesh load on first use
