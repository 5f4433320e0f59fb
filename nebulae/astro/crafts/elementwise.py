"""Element-wise maths: Sqrt, Exp, Log, Sin, Cos, Abs, Maxele, Minele, Clip, Where and StopGrad, as torch computes them.

The one-input functions share one kernel, `unary(how, x)`, which calls the engine's function directly.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

__all__ = ["Sqrt", "Exp", "Log", "Sin", "Cos", "Abs", "Maxele", "Minele", "Clip", "Where", "StopGrad"]


class Kernels(Protocol):
    def unary(self, how: str, x: Any) -> Any:
        """Element-wise `how` of x: 'sqrt', 'exp', 'log', 'sin', 'cos' or 'abs' (gradient sign(x), 0 at 0, as torch)."""

    def maximum(self, x: Any, y: Any) -> Any:
        """Element-wise maximum of two broadcastable arrays; ties share the gradient equally."""

    def minimum(self, x: Any, y: Any) -> Any:
        """Element-wise minimum of two broadcastable arrays; ties share the gradient equally."""

    def clamp(self, x: Any, lo: Any, hi: Any) -> Any:
        """x clamped to [lo, hi] (numbers, arrays or None for no bound); an input on a bound keeps its gradient."""

    def where(self, condition: Any, x: Any, y: Any) -> Any:
        """x where the boolean `condition` holds, else y (arrays or numbers, broadcast together)."""

    def stop_gradient(self, x: Any) -> Any:
        """x unchanged, with no gradient flowing back through it."""


def clip_bounds(ranges) -> tuple:
    """(lo, hi) from `ranges`: a pair (either side may be None) or one number/array r meaning (-r, r)."""
    if isinstance(ranges, (tuple, list)):
        if len(ranges) != 2:
            raise ValueError(f"Clip ranges must be (lo, hi) or one number r meaning (-r, r), got {ranges!r}")
        lo, hi = ranges
    elif ranges is None:
        raise ValueError("Clip ranges must be (lo, hi) or one number r meaning (-r, r), got None")
    else:
        lo, hi = -ranges, ranges
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo > hi:
        raise ValueError(f"Clip needs lo <= hi, got lo={lo}, hi={hi}")
    return lo, hi


def check_broadcast(craft: str, **operands) -> None:
    """Raise ValueError naming every operand's shape unless they broadcast together (numbers have shape ())."""
    shapes = {name: tuple(np.shape(v)) for name, v in operands.items()}
    try:
        np.broadcast_shapes(*shapes.values())
    except ValueError:
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(
            f"{craft}: the shapes {listed} do not broadcast together (each dim must match or be 1)"
        ) from None


class _Unary:
    """A one-input function: `run(x)` is `unary(how, x)`."""

    how = ""

    def run(self, x):
        return self.ops.unary(self.how, x)


class Sqrt(_Unary):
    """Element-wise square root, as torch.sqrt. Call (x).

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    how = "sqrt"

    def __init__(self, scope: str = "SQRT"):
        super().__init__(scope)


class Exp(_Unary):
    """Element-wise exponential, as torch.exp. Call (x).

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    how = "exp"

    def __init__(self, scope: str = "EXP"):
        super().__init__(scope)


class Log(_Unary):
    """Element-wise natural logarithm, as torch.log. Call (x).

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    how = "log"

    def __init__(self, scope: str = "LOG"):
        super().__init__(scope)


class Sin(_Unary):
    """Element-wise sine, as torch.sin. Call (x).

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    how = "sin"

    def __init__(self, scope: str = "SIN"):
        super().__init__(scope)


class Cos(_Unary):
    """Element-wise cosine, as torch.cos. Call (x).

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    how = "cos"

    def __init__(self, scope: str = "COS"):
        super().__init__(scope)


class Abs(_Unary):
    """Element-wise absolute value, as torch.abs. Call (x).

    The gradient is sign(x), so 0 at x = 0 as torch gives it, on both engines (JAX's own abs gives 1 there).

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    how = "abs"

    def __init__(self, scope: str = "ABS"):
        super().__init__(scope)


class Maxele:
    """Element-wise maximum of two broadcastable arrays, as torch.maximum. Call (x, y).

    Ties share the gradient equally between the two operands.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "MAXELE"):
        super().__init__(scope)

    def run(self, x, y):
        return self.ops.maximum(x, y)


class Minele:
    """Element-wise minimum of two broadcastable arrays, as torch.minimum. Call (x, y).

    Ties share the gradient equally between the two operands.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "MINELE"):
        super().__init__(scope)

    def run(self, x, y):
        return self.ops.minimum(x, y)


class Clip:
    """Clamp to [lo, hi], as torch.clamp: call (x, ranges) with ranges = (lo, hi) or r meaning (-r, r).

    Either bound may be None (no bound) or an array broadcastable to x. An input exactly on a bound
    keeps its full gradient, as torch.clamp gives it. `in_place` is accepted for compatibility with
    the original and ignored: the result is always a new array on both engines (JAX arrays are
    immutable), so assign it.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "CLIP"):
        super().__init__(scope)

    def run(self, x, ranges, in_place: bool = False):
        lo, hi = clip_bounds(ranges)
        return self.ops.clamp(x, lo, hi)


class Where:
    """x where `condition` holds, else y, as torch.where: call (condition, x, y).

    `condition` is a boolean array (compare first, e.g. `x > 0`); x and y are arrays or numbers; the
    three broadcast together. The gradient flows to x where the condition holds and to y elsewhere.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "WHERE"):
        super().__init__(scope)

    def run(self, condition, x, y):
        if not hasattr(condition, "shape") or self.ops.dtype_name(condition) != "bool":
            got = f"dtype {self.ops.dtype_name(condition)}" if hasattr(condition, "shape") else repr(condition)
            raise TypeError(f"Where needs a boolean array as condition, got {got}: compare first, e.g. x > 0")
        try:
            return self.ops.where(condition, x, y)
        except (RuntimeError, TypeError, ValueError):
            check_broadcast("Where", condition=condition, x=x, y=y)
            raise


class StopGrad:
    """The input unchanged, with no gradient flowing back through it (straight-through estimators, targets),
    as torch's `detach`. Call (x).

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "STOPGRAD"):
        super().__init__(scope)

    def run(self, x):
        return self.ops.stop_gradient(x)
