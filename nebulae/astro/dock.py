"""dock: the craft catalogue, written once for both engines.

Engine-neutral names (initialisers, autoPad, schedules) live here; every other name is looked up
in the bound backend's dock on first access, which binds the engine named by `nebulae.Law.CORE`.
Access crafts as `dock.Dense`, `dock.coat`, ...; `import nebulae` alone binds nothing.
"""

from __future__ import annotations

from nebulae import law
from nebulae.astro.init import (  # noqa: F401 (re-exported)
    Initializer,
    Normal,
    Ones,
    Orthog,
    Uniform,
    Void,
    XavierNorm,
    XavierUnif,
    Zeros,
)

NEUTRAL = ["Initializer", "Void", "XavierNorm", "XavierUnif", "Normal", "Uniform", "Orthog", "Ones", "Zeros"]


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    module = law.backend().dock
    try:
        return getattr(module, name)
    except AttributeError:
        raise AttributeError(f"nebulae.astro.dock has no {name!r} (engine {law.Law.CORE!r})") from None


def __dir__():
    names = set(NEUTRAL) | set(globals())
    backend = law.bound_backend()
    if backend is not None:
        names |= set(backend.dock.__all__)
    return sorted(names)
