"""The PyTorch backend: eager execution, torch.optim, DDP. Implements `nebulae.backend.Backend`."""

import torch

from .. import lazy_parts
from . import dock, hangar, kernels, tensor
from .tensor import devices, set_float32

ENGINE = "pytorch"
manual_seed = torch.manual_seed  # the global generator (CPU and every CUDA device): dropout masks, noise
__all__ = ["ENGINE", "dock", "tensor", "anchor", "universe", "summary", "kernels", "hangar", "devices", "set_float32"]
__getattr__ = lazy_parts(__name__, ("anchor", "universe", "summary"))  # imported on first use
