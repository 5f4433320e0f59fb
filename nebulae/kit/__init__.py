"""kit: utilities shared by both engines (seeding, timing, configuration, GPU monitoring).

Names load lazily, so `import nebulae.kit` stays light.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "GPUtil": "gputil",
    "GpuInfo": "gputil",
    "GpuStat": "gputil",
    "Timer": "timer",
    "destine": "seeding",
    "parse_cfg": "config",
    "record_cfg": "config",
    "hotvec2mtx": "hotvec",
    "mtx2hotvec": "hotvec",
    "ver2num": "version",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"nebulae.kit.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'nebulae.kit' has no attribute {name!r}")
