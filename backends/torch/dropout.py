"""Random crafts on torch: Dropout (element-wise or channel-wise, train mode only) and Gauss noise."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nebulae.astro import init as _init

from .craft import Craft

__all__ = ["Dropout", "Gauss"]


class Dropout(Craft):
    """Zero elements (dim=1) or whole channels (dim=2, 3) with probability `p_drop`, scaling the rest by 1/(1-p)."""

    def __init__(self, p_drop: float, dim: int = 1, scope: str = "DROPOUT"):
        super().__init__(scope)
        if not 0.0 <= p_drop < 1.0:
            raise ValueError(f"Dropout p_drop must be in [0, 1), got {p_drop}")
        if dim not in (1, 2, 3):
            raise ValueError(f"Dropout dim must be 1 (element-wise), 2 or 3 (channel-wise), got {dim}")
        self.p_drop, self.dim = float(p_drop), dim
        self.seed = _init.draw_seed()  # kept in step with JAX's stream; torch draws masks from its global RNG

    def run(self, x):
        if not self.is_training() or self.p_drop == 0.0:
            return x
        if self.dim == 1:
            return F.dropout(x, self.p_drop, True)
        return (F.dropout2d if self.dim == 2 else F.dropout3d)(x, self.p_drop, True)


class Gauss(Craft):
    """Standard normal noise shaped like `x` (its dtype too), drawn anew on every call, in any mode.

    As Dropout: on JAX from the craft's own stream (seeded from the initialiser stream), on torch from
    torch's global RNG; the two engines' draws differ. Used for reparameterised sampling (VAE).
    """

    def __init__(self, scope: str = "GAUSS"):
        super().__init__(scope)
        self.seed = _init.draw_seed()  # kept in step with JAX's stream; torch draws from its global RNG

    def run(self, x):
        return torch.randn_like(x)
