"""cockpit: devices (Engine), checkpoints (TimeMachine) and data parallelism (Multiverse).

Names load lazily, so `import nebulae.cockpit` stays light (no torch, jax, orbax or h5py).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Engine": "engine",
    "CPU": "engine",
    "GPU": "engine",
    "TimeMachine": "timemachine",
    "Landing": "timemachine",
    "AnchorMismatchError": "timemachine",
    "Multiverse": "multiverse",
    "WorldError": "multiverse",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"nebulae.cockpit.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'nebulae.cockpit' has no attribute {name!r}")
