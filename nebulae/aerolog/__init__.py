"""aerolog: training dashboards (DashBoard) and model summaries (Inspector).

Names load lazily, so `import nebulae.aerolog` stays light (matplotlib loads only when `log` draws).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DashBoard": "dashboard",
    "FORMATS": "dashboard",
    "Inspector": "inspector",
    "Summary": "inspector",
    "Layer": "inspector",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"nebulae.aerolog.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'nebulae.aerolog' has no attribute {name!r}")
