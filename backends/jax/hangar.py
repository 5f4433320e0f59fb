"""The hangar's models bound to the JAX Craft: module-level classes (`nebulae.backends.jax.hangar.ResNet18`)."""

from nebulae.astro.crafts.binding import bind_hangar

from .craft import Craft

__all__ = bind_hangar(globals(), Craft)
