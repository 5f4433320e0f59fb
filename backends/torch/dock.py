"""The torch dock namespace: the front catalogue bound to this engine's Craft, plus its own modes,
coat/shell, optimizers, EMA and augmentations (nebulae.astro.crafts.binding.build_dock)."""

import importlib
import importlib.util

from nebulae.astro.crafts.binding import build_dock

from . import augment, craft, ema, mode, optim, tensor

# TRANSITIONAL (issue 16): the families not yet moved to nebulae/astro/crafts
_LEGACY_FAMILIES = [
    "pad",
    "pool",
    "graph",
    "activation",
    "dropout",
    "norm",
    "recurrent",
    "attention",
    "shape",
    "resample",
    "elementwise",
    "reduce",
    "linalg",
    "loss",
    "metric",
]
_LEGACY = [
    importlib.import_module(f"{__package__}.{name}")
    for name in _LEGACY_FAMILIES
    if importlib.util.find_spec(f"{__package__}.{name}") is not None
]

__all__ = build_dock(globals(), craft.Craft, [mode, tensor, *_LEGACY, optim, ema, augment])

from . import hangar  # noqa: E402,F401 (binds the hangar to this dock's Craft)
