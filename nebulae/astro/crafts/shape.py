"""Shape crafts and constants: Roll, Reshape, Permute, Expand, Squash, Tile, Flatten, Concat, Stack, Full,
FullLike, OnesLike and ZerosLike, as torch computes them.

(torch's `cat` is `Concat`; the initialisers `Ones`/`Zeros` of nebulae.astro.init keep those names, so the
constant crafts are `OnesLike`/`ZerosLike` and `Full((shape), 1.0)`.)
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

__all__ = [
    "Roll",
    "Reshape",
    "Permute",
    "Expand",
    "Squash",
    "Tile",
    "Flatten",
    "Concat",
    "Stack",
    "Full",
    "FullLike",
    "OnesLike",
    "ZerosLike",
]

# the dtypes a constant may take; float64/int64 are float32/int32 on JAX, which runs without 64-bit types
DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64")


class Kernels(Protocol):
    def roll(self, x: Any, shift: int | tuple[int, ...], axis: int | tuple[int, ...] | None) -> Any:
        """Cyclic shift by `shift` along `axis` (tuples of equal length); axis None rolls the flattened array."""

    def permute(self, x: Any, order: tuple[int, ...]) -> Any:
        """The dims reordered: output dim i is input dim order[i]."""

    def expand_dims(self, x: Any, axis: int) -> Any:
        """x with a dim of size 1 inserted at `axis` (in range for the result)."""

    def squeeze(self, x: Any, axis: tuple[int, ...] | None) -> Any:
        """x without its size-1 dims: all of them (axis None) or those among `axis` (in range; others are kept)."""

    def tile(self, x: Any, times: tuple[int, ...]) -> Any:
        """x repeated times[i] times along dim i (torch's `repeat`; len(times) >= x.ndim)."""

    def flatten(self, x: Any, start: int, end: int) -> Any:
        """x with dims start..end (non-negative, start <= end) merged into one; a 0-D x becomes 1-D."""

    def concat(self, xs: list, axis: int) -> Any:
        """The arrays of `xs` joined along their existing dim `axis`."""

    def stack(self, xs: list, axis: int) -> Any:
        """The same-shape arrays of `xs` stacked along a new dim `axis`."""

    def full(self, shape: tuple[int, ...], value: float, dtype: str) -> Any:
        """A new array of `shape` and dtype `dtype` (a name of DTYPES) filled with `value`, on the engine's device."""

    def full_like(self, x: Any, value: float) -> Any:
        """A new array of x's shape, dtype and device filled with `value` (no gradient to x)."""


def check_axis(craft: str, axis: int, ndim: int, extra: int = 0, name: str = "axis") -> int:
    """`axis` made non-negative; IndexError naming the craft unless it is in range for an `ndim`-D array
    (-n <= axis < n with n = ndim + extra: `extra` 1 for a dim the result adds)."""
    n = ndim + extra
    if not -n <= axis < n:
        raise IndexError(f"{craft}: {name} {axis} is out of range for a {ndim}-D array (use -{n} .. {n - 1})")
    return axis % n


def check_int(craft: str, name: str, value) -> int:
    """`value` as an int; TypeError naming the craft and argument otherwise (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{craft}: {name} must be an int, got {value!r}")
    return value


def check_number(craft: str, value) -> float | int | bool:
    """A constant's fill `value`: a real Python or NumPy number (as a Python one); TypeError otherwise."""
    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        return value.item() if isinstance(value, np.generic) else value
    raise TypeError(f"{craft}: value must be a real number (int, float or bool), got {value!r}")


def join_error(craft: str, xs, axis: int, new: bool) -> None:
    """Raise a ValueError/IndexError that names what is wrong with joining `xs` along `axis` (if anything is)."""
    shapes = [tuple(np.shape(x)) for x in xs]
    ndim = len(shapes[0])
    if not new and ndim == 0:
        raise ValueError(f"{craft}: 0-D arrays have no axis to join along: use Stack")
    check_axis(craft, axis, ndim, extra=int(new))
    if new and len(set(shapes)) > 1:
        raise ValueError(f"{craft}: every array must have the same shape, got {shapes}")
    if not new:
        axis %= ndim
        off = [s[:axis] + s[axis + 1 :] if len(s) == ndim else None for s in shapes]
        if len(set(off)) > 1:
            raise ValueError(
                f"{craft}: the arrays must have the same number of dims and the same sizes off axis {axis}, "
                f"got {shapes}"
            )


def check_list(craft: str, xs) -> None:
    """TypeError unless `xs` is a non-empty list or tuple of arrays."""
    if not isinstance(xs, (list, tuple)):
        got = "a single array" if hasattr(xs, "shape") else repr(xs)
        raise TypeError(f"{craft} takes a list (or tuple) of arrays, got {got}: pass [x, y, ...]")
    if not xs:
        raise ValueError(f"{craft} needs at least one array, got an empty {type(xs).__name__}")


class Roll:
    """Cyclic shift, as torch.roll: call (x, shift, axis=None).

    `shift` and `axis` are ints or tuples of equal length; axis None rolls the flattened array.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "ROLL"):
        super().__init__(scope)

    def run(self, x, shift: int | tuple[int, ...], axis: int | tuple[int, ...] | None = None):
        return self.ops.roll(x, shift, axis)


class Reshape:
    """Reshape to `shape` (one entry may be -1), as torch.reshape: call (x, shape).

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "RESHAPE"):
        super().__init__(scope)

    def run(self, x, shape: tuple[int, ...]):
        return x.reshape(tuple(shape))


class Permute:
    """Reorder the dims, as torch.permute: call (x, order); output dim i is input dim order[i].

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "PERMUTE"):
        super().__init__(scope)

    def run(self, x, order: tuple[int, ...]):
        return self.ops.permute(x, tuple(order))


class Expand:
    """Insert a dim of size 1 at `axis`, as torch.unsqueeze: call (x, axis=0).

    Negative axes count from the end of the result (-1 appends a dim).

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "EXPAND"):
        super().__init__(scope)

    def run(self, x, axis: int = 0):
        return self.ops.expand_dims(x, check_axis("Expand", axis, x.ndim, extra=1))


class Squash:
    """Remove dims of size 1, as torch.squeeze: call (x, axis=None).

    All of them (axis None) or those of `axis` (int or tuple) that have size 1: as torch.squeeze, an
    `axis` whose size is not 1 is left as it is (no error) on both engines; an axis out of range is an
    IndexError.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "SQUASH"):
        super().__init__(scope)

    def run(self, x, axis: int | tuple[int, ...] | None = None):
        if axis is not None:
            axis = tuple(check_axis("Squash", a, x.ndim) for a in ((axis,) if isinstance(axis, int) else axis))
        return self.ops.squeeze(x, axis)


class Tile:
    """Repeat x `times[i]` times along dim i, as torch's `Tensor.repeat`: call (x, times).

    len(times) >= x.ndim; extra leading counts add dims.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "TILE"):
        super().__init__(scope)

    def run(self, x, times: tuple[int, ...]):
        if len(times) < x.ndim:
            raise ValueError(f"Tile needs one repeat count per dim of x ({x.ndim}), got times={tuple(times)}")
        return self.ops.tile(x, tuple(times))


class Flatten:
    """Merge dims start_dim..end_dim into one, as torch.nn.Flatten / torch.flatten: call (x).

    The default keeps the batch dim: (N, C, H, W) -> (N, C * H * W). Use this rather than the
    torch-only `x.flatten(1)` / `x.view(n, -1)` inside `run`.

    Args:
        start_dim: the first dim to merge (negative counts from the end).
        end_dim: the last dim to merge, included (negative counts from the end).
        scope: the name of this craft in checkpoints and summaries.

    A dim out of range for the input, or start_dim after end_dim, is an error on both engines.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1, scope: str = "FLATTEN"):
        super().__init__(scope)
        self.start_dim = check_int("Flatten", "start_dim", start_dim)
        self.end_dim = check_int("Flatten", "end_dim", end_dim)
        if (start_dim < 0) == (end_dim < 0) and start_dim > end_dim:
            raise ValueError(f"Flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim})")

    def run(self, x):
        extra = int(x.ndim == 0)  # a 0-D array flattens as a 1-D one, as torch.flatten does
        start = check_axis("Flatten", self.start_dim, x.ndim, extra, "start_dim")
        end = check_axis("Flatten", self.end_dim, x.ndim, extra, "end_dim")
        if start > end:
            raise ValueError(
                f"Flatten: start_dim {self.start_dim} comes after end_dim {self.end_dim} for a {x.ndim}-D input"
            )
        return self.ops.flatten(x, start, end)


class Concat:
    """Join a list of arrays along an existing `axis`, as torch.cat: call (xs, axis=-1).

    The arrays need the same number of dims and the same sizes off `axis`.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "CONCAT"):
        super().__init__(scope)

    def run(self, xs, axis: int = -1):
        check_list("Concat", xs)
        try:
            return self.ops.concat(xs, axis)
        except (RuntimeError, TypeError, ValueError, IndexError):
            join_error("Concat", xs, axis, new=False)
            raise


class Stack:
    """Stack a list of same-shape arrays along a new `axis`, as torch.stack: call (xs, axis=-1).

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "STACK"):
        super().__init__(scope)

    def run(self, xs, axis: int = -1):
        check_list("Stack", xs)
        try:
            return self.ops.stack(xs, axis)
        except (RuntimeError, TypeError, ValueError, IndexError):
            join_error("Stack", xs, axis, new=True)
            raise


class Full:
    """A constant array of `shape` filled with `value`, as torch.full: call ().

    Made on the engine's device at each call (no weight is stored); it carries no gradient.

    Args:
        shape: the shape, an int or a tuple of non-negative ints.
        value: the fill value, a real number.
        dtype: the dtype's name: 'float32' (default), 'float16', 'bfloat16', 'float64', 'int8', 'int16',
            'int32', 'int64', 'uint8' or 'bool'. float64 and int64 are float32 and int32 on JAX, which
            runs without 64-bit types.
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, shape: int | tuple[int, ...], value: float, dtype: str = "float32", scope: str = "FULL"):
        super().__init__(scope)
        dims = (shape,) if isinstance(shape, int) else shape
        if not isinstance(dims, (tuple, list)) or not all(isinstance(d, int) and d >= 0 for d in dims):
            raise ValueError(f"Full: shape must be an int or a tuple of non-negative ints, got {shape!r}")
        if dtype not in DTYPES:
            raise ValueError(f"Full: dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        self.shape, self.value, self.dtype = tuple(dims), check_number("Full", value), dtype

    def run(self):
        return self.ops.full(self.shape, self.value, self.dtype)


class FullLike:
    """An array of x's shape, dtype and device filled with `value`, as torch.full_like: call (x).

    The dtype follows x (a float value fills an integer x truncated, as torch does); no gradient flows to x.

    Args:
        value: the fill value, a real number.
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, value: float, scope: str = "FULLLIKE"):
        super().__init__(scope)
        self.value = check_number("FullLike", value)

    def run(self, x):
        return self.ops.full_like(x, self.value)


class OnesLike:
    """An array of ones with x's shape, dtype and device, as torch.ones_like: call (x).

    (The initialiser `Ones` keeps its name: this is the craft.) No gradient flows to x.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "ONESLIKE"):
        super().__init__(scope)

    def run(self, x):
        return self.ops.full_like(x, 1)


class ZerosLike:
    """An array of zeros with x's shape, dtype and device, as torch.zeros_like: call (x).

    (The initialiser `Zeros` keeps its name: this is the craft.) No gradient flows to x.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "ZEROSLIKE"):
        super().__init__(scope)

    def run(self, x):
        return self.ops.full_like(x, 0)
