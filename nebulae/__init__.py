"""Nebulae: write a model, its training step and its data pipeline once; run it on PyTorch or JAX.

`import nebulae` imports neither torch nor jax: the engine named by `nebulae.Law.CORE` is bound on
the first engine-specific use.
"""

from __future__ import annotations

import importlib
import os as _os

from .law import Law

__version__ = "0.7.0"
__all__ = ["Law", "astro", "fuel", "aerolog", "cockpit", "kit", "__version__"]

# In a source checkout `backends/` sits beside this package; installed wheels carry it as
# nebulae/backends. Adding the checkout root to __path__ lets `nebulae.backends` resolve in both.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isdir(_os.path.join(_root, "backends")) and not _os.path.isdir(
    _os.path.join(_os.path.dirname(__file__), "backends")
):
    __path__.append(_root)  # noqa: F821 (module __path__)

_SUBMODULES = {"astro", "fuel", "aerolog", "cockpit", "kit"}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"nebulae.{name}")
    raise AttributeError(f"module 'nebulae' has no attribute {name!r}")
