"""Dropout and noise kernels on torch: torch's functional dropouts and torch's global generator."""

import torch
import torch.nn.functional as F

from nebulae.astro import init as _init

_DROPOUT = {1: F.dropout, 2: F.dropout2d, 3: F.dropout3d}


def dropout_stream():
    # the seed is drawn only to keep the initialiser stream in step with JAX's; torch's global RNG draws
    return _init.draw_seed(), None


def dropout(x, p, dim, stream):
    return _DROPOUT[dim](x, p, True)


def gauss(x, stream):
    return torch.randn_like(x)
