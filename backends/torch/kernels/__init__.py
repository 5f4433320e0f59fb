"""The torch kernels every front craft calls through `self.ops`: one module per craft family.

Each module implements its family's `Kernels` protocol (nebulae/astro/crafts/<family>.py), where the
kernels are documented; this package gathers their functions into one namespace.
"""

import importlib
from types import SimpleNamespace

from nebulae.astro.crafts import FAMILIES

__all__ = ["OPS"]

OPS = SimpleNamespace()
for _family in ["base", *FAMILIES]:
    _module = importlib.import_module(f"{__name__}.{_family}")
    for _name in _module.__all__:
        if hasattr(OPS, _name):
            raise RuntimeError(f"kernel {_name!r} of {_family} is already defined")
        setattr(OPS, _name, getattr(_module, _name))
