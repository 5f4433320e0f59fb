"""The JAX dock namespace: the front catalogue and updaters bound to this engine's Craft, plus its modes and
coat/shell (nebulae.astro.crafts.binding.build_dock)."""

from nebulae.astro.crafts.binding import build_dock

from . import craft, ema, mode, optim, tensor

__all__ = build_dock(globals(), craft.Craft, [mode, tensor], {"Optimizer": optim.Updater, "EMA": ema.Updater})

from . import hangar  # noqa: E402,F401 (binds the hangar to this dock's Craft)
