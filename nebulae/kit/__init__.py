"""kit: utilities shared by both engines (seeding, timing, configuration, GPU monitoring).

Names load lazily, so `import nebulae.kit` stays light.
"""

from __future__ import annotations

import importlib

_EXPORTS = {"GPUtil": "gputil", "GpuInfo": "gputil"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"nebulae.kit.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'nebulae.kit' has no attribute {name!r}")
