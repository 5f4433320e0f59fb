"""kit: utilities shared by both engines (seeding, timing, configuration, GPU monitoring).

Names load lazily, so `import nebulae.kit` stays light.
"""

from __future__ import annotations

from nebulae import lazy

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

__getattr__ = lazy.exports(__name__, _EXPORTS)
