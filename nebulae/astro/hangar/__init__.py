"""hangar: the model zoo, written once with dock crafts so every model runs on both engines.

Models: `ResNet(depth)` (18/34/50, v1.5) with `ResNet18/34/50`, `VGG_16`, `DCGAN`, `VAE`, `VQVAE`,
`UNet`. `in_shape` is always (C, H, W), as the NCHW tensors the models take.

How one class serves both engines: each family module (resnet, vgg, gan, vae, vqvae, unet) defines
its crafts inside `build(dock)`, a factory cached per dock namespace that uses only dock crafts and
Python arithmetic (no torch or jax import). `hangar.ResNet`, ... are looked up on first access in
the factory applied to the bound engine's dock (the access binds the engine, as `dock.Craft` does);
`hangar.build(dock)` returns the same names for a given backend dock, e.g. both engines side by side
in one process for parity tests. The same `init.seed(n)` builds the same weights on both engines;
parameter paths follow torchvision and the PyTorch examples where those exist (`layer1/0/conv1/weight`,
`features/0/bias`, `main/0/weight`, `fc21/weight`).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from nebulae import law

_FAMILIES = {
    "ResNet": "resnet",
    "ResNet18": "resnet",
    "ResNet34": "resnet",
    "ResNet50": "resnet",
    "VGG_16": "vgg",
    "DCGAN": "gan",
    "VAE": "vae",
    "VQVAE": "vqvae",
    "UNet": "unet",
}

__all__ = [*_FAMILIES, "build", "nparams"]


def _family(name: str) -> Callable[[Any], dict]:
    """The cached `build(dock)` factory of a family module."""
    return importlib.import_module(f"{__name__}.{name}").build


def build(dock) -> SimpleNamespace:
    """Every hangar model built against `dock` (a backend dock such as `nebulae.backends.jax.dock`)."""
    names: dict = {}
    for family in sorted(set(_FAMILIES.values())):
        names.update(_family(family)(dock))
    return SimpleNamespace(**{name: names[name] for name in _FAMILIES})


def nparams(craft) -> int:
    """The number of trainable parameters of a craft (BN running statistics and RNG state excluded)."""
    return sum(math.prod(tuple(v.shape)) for v in craft.vars())


def __getattr__(name: str):
    family = _FAMILIES.get(name)
    if family is None:
        raise AttributeError(f"nebulae.astro.hangar has no {name!r}; models: {', '.join(_FAMILIES)}")
    return _family(family)(law.backend().dock)[name]


def __dir__():
    return sorted(set(__all__) | set(globals()))
