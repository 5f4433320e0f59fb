"""Element-wise maths crafts on JAX: Sqrt, Exp, Log, Sin, Cos, Maxele, Minele, Clip and StopGrad."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nebulae.astro.args import clip_bounds as _bounds

from .craft import Craft

__all__ = ["Sqrt", "Exp", "Log", "Sin", "Cos", "Maxele", "Minele", "Clip", "StopGrad"]


class Sqrt(Craft):
    """Element-wise square root."""

    def __init__(self, scope: str = "SQRT"):
        super().__init__(scope)

    def run(self, t):
        return jnp.sqrt(t)


class Exp(Craft):
    """Element-wise exponential."""

    def __init__(self, scope: str = "EXP"):
        super().__init__(scope)

    def run(self, t):
        return jnp.exp(t)


class Log(Craft):
    """Element-wise natural logarithm."""

    def __init__(self, scope: str = "LOG"):
        super().__init__(scope)

    def run(self, t):
        return jnp.log(t)


class Sin(Craft):
    """Element-wise sine."""

    def __init__(self, scope: str = "SIN"):
        super().__init__(scope)

    def run(self, t):
        return jnp.sin(t)


class Cos(Craft):
    """Element-wise cosine."""

    def __init__(self, scope: str = "COS"):
        super().__init__(scope)

    def run(self, t):
        return jnp.cos(t)


class Maxele(Craft):
    """Element-wise maximum of two (broadcastable) arrays."""

    def __init__(self, scope: str = "MAXELE"):
        super().__init__(scope)

    def run(self, x, y):
        return jnp.maximum(x, y)


class Minele(Craft):
    """Element-wise minimum of two (broadcastable) arrays."""

    def __init__(self, scope: str = "MINELE"):
        super().__init__(scope)

    def run(self, x, y):
        return jnp.minimum(x, y)


class Clip(Craft):
    """Clamp to [lo, hi]: call (x, ranges) with ranges = (lo, hi) or r meaning (-r, r); bounds may be arrays.

    `in_place` is accepted for compatibility with the original and ignored: the result is always a new
    array on both engines (JAX arrays are immutable), so assign it.
    """

    def __init__(self, scope: str = "CLIP"):
        super().__init__(scope)

    def run(self, x, ranges, in_place: bool = False):
        lo, hi = _bounds(ranges)
        # where-based, not jnp.clip: an input ON a bound keeps its full gradient, as torch.clamp gives it
        if lo is not None:
            x = jnp.where(x < lo, jnp.asarray(lo, x.dtype), x)
        if hi is not None:
            x = jnp.where(x > hi, jnp.asarray(hi, x.dtype), x)
        return x


class StopGrad(Craft):
    """The input unchanged, with no gradient flowing back through it (straight-through estimators, targets)."""

    def __init__(self, scope: str = "STOPGRAD"):
        super().__init__(scope)

    def run(self, t):
        return jax.lax.stop_gradient(t)
