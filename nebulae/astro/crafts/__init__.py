"""The craft catalogue, each craft written once: signature, `Args:` docstring, checks, NumPy init, `run`.

A family module (linear, conv, pool, ...) defines engine-neutral classes and lists them in `__all__`.
They are not instantiable alone: each engine's dock binds every one of them to its base craft
(`nn.Module` / `nnx.Module`), giving real module-level classes such as
`nebulae.backends.torch.dock.Conv`. Inside `run` a craft calls the bound engine's kernels through
`self.ops` (layer-granularity array functions declared by the family's `Kernels` protocol) and
declares its weights with `self.param`, `self.buffer` and `self.fixed`.
"""

from __future__ import annotations

import importlib

FAMILIES = [
    "linear",
    "conv",
    "pad",
    "pool",
    "graph",
    "activation",
    "dropout",
    "norm",
    "recurrent",
    "attention",
    "shape",
    "resample",
    "elementwise",
    "reduce",
    "linalg",
    "loss",
    "metric",
    "augment",
]

__all__ = ["FAMILIES", "catalogue", "family"]


def family(name: str):
    """The family module `nebulae.astro.crafts.<name>`."""
    return importlib.import_module(f"{__name__}.{name}")


def catalogue() -> dict[str, type]:
    """Every public craft spec by name, in family order."""
    specs: dict[str, type] = {}
    for name in FAMILIES:
        module = family(name)
        for public in module.__all__:
            if public in specs:
                raise RuntimeError(f"craft {public!r} is defined twice ({specs[public].__module__} and {name})")
            specs[public] = getattr(module, public)
    return specs
