"""Activation crafts on torch."""

from __future__ import annotations

import torch.nn.functional as F

from .craft import Craft

__all__ = ["Relu"]


class Relu(Craft):
    """max(x, 0)."""

    def __init__(self, scope: str = "RELU"):
        super().__init__(scope)

    def run(self, x):
        return F.relu(x)
