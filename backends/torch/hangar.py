"""The hangar's models bound to the torch Craft: module-level classes (`nebulae.backends.torch.hangar.ResNet18`)."""

from nebulae.astro.crafts.binding import bind_hangar

from .craft import Craft

__all__ = bind_hangar(globals(), Craft)
