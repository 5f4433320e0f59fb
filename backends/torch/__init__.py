"""The PyTorch backend: eager execution, torch.optim, DDP. Mirrors `backends/jax/` file for file."""

from . import dock
from .tensor import devices

ENGINE = "pytorch"
__all__ = ["dock", "devices", "ENGINE"]
