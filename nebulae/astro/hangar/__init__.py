"""hangar: the model zoo, written once with dock crafts so every model runs on both engines.

Models: `ResNet(depth)` (18/34/50, v1.5) with `ResNet18/34/50`, `VGG_16`, `DCGAN`, `VAE`, `VQVAE`,
`UNet`. `in_shape` is always (C, H, W), as the NCHW tensors the models take.

Each family module (resnet, vgg, gan, vae, vqvae, unet) defines its crafts as plain module-level
classes (listed in its `CRAFTS`) that build their layers from `self.dock`, the engine's dock, and
their blocks from `self.hangar`. Each engine binds them to its Craft as real module-level classes
(`nebulae.backends.torch.hangar.ResNet18`, picklable); `hangar.ResNet`, ... are the bound engine's
(the access binds the engine, as `dock.Craft` does), and `hangar.build(dock)` gives one engine's
models, e.g. both engines side by side in one process for parity tests. The same `init.seed(n)`
builds the same weights on both engines; parameter paths follow torchvision and the PyTorch
examples where those exist (`layer1/0/conv1/weight`, `features/0/bias`, `main/0/weight`, `fc21/weight`).
"""

from __future__ import annotations

import importlib
import math
from types import ModuleType

from nebulae import law

FAMILIES = ["resnet", "vgg", "gan", "vae", "vqvae", "unet"]
MODELS = ["ResNet", "ResNet18", "ResNet34", "ResNet50", "VGG_16", "DCGAN", "VAE", "VQVAE", "UNet"]

__all__ = [*MODELS, "build", "nparams", "specs"]


def specs() -> dict[str, type]:
    """Every hangar craft spec (models and their blocks) by name, for the engines to bind."""
    out: dict[str, type] = {}
    for family in FAMILIES:
        module = importlib.import_module(f"{__name__}.{family}")
        out.update({name: getattr(module, name) for name in module.CRAFTS})
    return out


def build(dock) -> ModuleType:
    """The hangar bound to the engine of `dock` (a backend dock such as `nebulae.backends.jax.dock`)."""
    return dock.Craft.hangar


def nparams(craft) -> int:
    """The number of trainable parameters of a craft (BN running statistics and RNG state excluded)."""
    return sum(math.prod(tuple(v.shape)) for v in craft.vars())


def __getattr__(name: str):
    if name not in MODELS:
        raise AttributeError(f"nebulae.astro.hangar has no {name!r}; models: {', '.join(MODELS)}")
    return getattr(build(law.backend().dock), name)


def __dir__():
    return sorted(set(__all__) | set(globals()))
