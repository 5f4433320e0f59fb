"""Engine backends, installed as `nebulae.backends`: `torch/` and `jax/`, each implementing nebulae.backend.Backend."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType


def lazy_parts(package: str, names: tuple[str, ...]) -> Callable[[str], ModuleType]:
    """A module `__getattr__` for an engine package that imports its submodules `names` on first access
    (so binding the engine does not pay for Orbax, torch.distributed, ... until they are used)."""
    lazy = frozenset(names)

    def __getattr__(name: str) -> ModuleType:  # noqa: N807 (a module's __getattr__)
        if name in lazy:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def gather_ops(package: str):
    """`OPS` of an engine's kernels package: its `base` module and one kernel module per craft family, each
    implementing that family's `Kernels` protocol (nebulae/astro/crafts/<family>.py)."""
    from nebulae.astro.crafts import FAMILIES
    from nebulae.astro.crafts.binding import gather_kernels

    return gather_kernels([importlib.import_module(f"{package}.{name}") for name in ("base", *FAMILIES)])
