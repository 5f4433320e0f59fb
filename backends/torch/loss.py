"""Losses on torch (mean-reduced, computed in float32). Class scores sit on axis 1, as in torch."""

from __future__ import annotations

import torch.nn.functional as F

from .craft import Craft

__all__ = ["MSE", "SftmXE"]


class MSE(Craft):
    """Mean squared error."""

    def __init__(self, scope: str = "MSE"):
        super().__init__(scope)

    def run(self, x, y):
        return F.mse_loss(x.float(), y.float())


class SftmXE(Craft):
    """Softmax cross-entropy on logits (N, C, ...): integer labels (N, ...) or soft/one-hot labels shaped like x."""

    def __init__(self, scope: str = "SFTMXE"):
        super().__init__(scope)

    def run(self, x, y):
        x = x.float()
        if y.is_floating_point():
            if y.shape != x.shape:
                raise ValueError(
                    f"SftmXE: soft labels must have the logits' shape {tuple(x.shape)}, got {tuple(y.shape)}"
                )
            return F.cross_entropy(x, y.float())
        return F.cross_entropy(x, y.long())
