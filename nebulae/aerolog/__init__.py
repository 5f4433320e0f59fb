"""aerolog: training dashboards (DashBoard) and model summaries (Inspector).

Names load lazily, so `import nebulae.aerolog` stays light (matplotlib loads only when `log` draws).
"""

from __future__ import annotations

from nebulae import lazy

_EXPORTS = {
    "DashBoard": "dashboard",
    "FORMATS": "dashboard",
    "Inspector": "inspector",
    "Summary": "inspector",
    "Layer": "inspector",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy.exports(__name__, _EXPORTS)
