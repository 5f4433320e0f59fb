"""Element-wise maths crafts on torch: Sqrt, Exp, Log, Sin, Cos, Maxele, Minele, Clip and StopGrad."""

from __future__ import annotations

import torch

from nebulae.astro.args import clip_bounds as _bounds

from .craft import Craft

__all__ = ["Sqrt", "Exp", "Log", "Sin", "Cos", "Maxele", "Minele", "Clip", "StopGrad"]


class Sqrt(Craft):
    """Element-wise square root."""

    def __init__(self, scope: str = "SQRT"):
        super().__init__(scope)

    def run(self, t):
        return torch.sqrt(t)


class Exp(Craft):
    """Element-wise exponential."""

    def __init__(self, scope: str = "EXP"):
        super().__init__(scope)

    def run(self, t):
        return torch.exp(t)


class Log(Craft):
    """Element-wise natural logarithm."""

    def __init__(self, scope: str = "LOG"):
        super().__init__(scope)

    def run(self, t):
        return torch.log(t)


class Sin(Craft):
    """Element-wise sine."""

    def __init__(self, scope: str = "SIN"):
        super().__init__(scope)

    def run(self, t):
        return torch.sin(t)


class Cos(Craft):
    """Element-wise cosine."""

    def __init__(self, scope: str = "COS"):
        super().__init__(scope)

    def run(self, t):
        return torch.cos(t)


class Maxele(Craft):
    """Element-wise maximum of two (broadcastable) arrays."""

    def __init__(self, scope: str = "MAXELE"):
        super().__init__(scope)

    def run(self, x, y):
        return torch.maximum(x, y)


class Minele(Craft):
    """Element-wise minimum of two (broadcastable) arrays."""

    def __init__(self, scope: str = "MINELE"):
        super().__init__(scope)

    def run(self, x, y):
        return torch.minimum(x, y)


class Clip(Craft):
    """Clamp to [lo, hi]: call (x, ranges) with ranges = (lo, hi) or r meaning (-r, r); bounds may be arrays.

    `in_place` is accepted for compatibility with the original and ignored: the result is always a new
    array on both engines (JAX arrays are immutable), so assign it.
    """

    def __init__(self, scope: str = "CLIP"):
        super().__init__(scope)

    def run(self, x, ranges, in_place: bool = False):
        lo, hi = _bounds(ranges)
        if isinstance(lo, torch.Tensor) or isinstance(hi, torch.Tensor):
            lo, hi = (
                v if v is None or isinstance(v, torch.Tensor) else torch.as_tensor(v, dtype=x.dtype, device=x.device)
                for v in (lo, hi)
            )
        return torch.clamp(x, lo, hi)


class StopGrad(Craft):
    """The input unchanged, with no gradient flowing back through it (straight-through estimators, targets)."""

    def __init__(self, scope: str = "STOPGRAD"):
        super().__init__(scope)

    def run(self, t):
        return t.detach()
