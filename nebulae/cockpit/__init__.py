"""cockpit: devices (Engine), checkpoints (TimeMachine) and data parallelism (Multiverse).

Names load lazily, so `import nebulae.cockpit` stays light (no torch, jax, orbax or h5py).
"""

from __future__ import annotations

from nebulae import lazy

_EXPORTS = {
    "Engine": "engine",
    "CPU": "engine",
    "GPU": "engine",
    "TimeMachine": "timemachine",
    "Landing": "timemachine",
    "AnchorMismatchError": "timemachine",
    "CorruptAnchorError": "anchors",
    "Multiverse": "multiverse",
    "WorldError": "multiverse",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy.exports(__name__, _EXPORTS)
