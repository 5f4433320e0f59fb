"""Shape crafts on torch: Roll, Reshape, Permute, Expand, Squash, Tile, Concat and Stack."""

from __future__ import annotations

import torch

from .craft import Craft

__all__ = ["Roll", "Reshape", "Permute", "Expand", "Squash", "Tile", "Concat", "Stack"]


class Roll(Craft):
    """Cyclic shift by `shift` along `axis` (int or tuples of equal length); axis None rolls the flattened array."""

    def __init__(self, scope: str = "ROLL"):
        super().__init__(scope)

    def run(self, x, shift: int | tuple[int, ...], axis: int | tuple[int, ...] | None = None):
        return torch.roll(x, shift, axis)


class Reshape(Craft):
    """Reshape to `shape` (one entry may be -1)."""

    def __init__(self, scope: str = "RESHAPE"):
        super().__init__(scope)

    def run(self, x, shape: tuple[int, ...]):
        return torch.reshape(x, shape)


class Permute(Craft):
    """Reorder the dims: output dim i is input dim order[i]."""

    def __init__(self, scope: str = "PERMUTE"):
        super().__init__(scope)

    def run(self, x, order: tuple[int, ...]):
        return torch.permute(x, order)


class Expand(Craft):
    """Insert a dim of size 1 at `axis` (torch.unsqueeze; negative axes count from the end of the result)."""

    def __init__(self, scope: str = "EXPAND"):
        super().__init__(scope)

    def run(self, x, axis: int = 0):
        return torch.unsqueeze(x, axis)


class Squash(Craft):
    """Remove dims of size 1: all of them (axis None) or those of `axis` (int or tuple) that have size 1.

    As torch.squeeze, an `axis` whose size is not 1 is left as it is (no error) on both engines.
    """

    def __init__(self, scope: str = "SQUASH"):
        super().__init__(scope)

    def run(self, x, axis: int | tuple[int, ...] | None = None):
        return torch.squeeze(x) if axis is None else torch.squeeze(x, axis)


class Tile(Craft):
    """Repeat x `times[i]` times along dim i (torch's `repeat`): len(times) >= x.ndim; extra leading counts add dims."""

    def __init__(self, scope: str = "TILE"):
        super().__init__(scope)

    def run(self, x, times: tuple[int, ...]):
        if len(times) < x.ndim:
            raise ValueError(f"Tile needs one repeat count per dim of x ({x.ndim}), got times={tuple(times)}")
        return x.repeat(times)


class Concat(Craft):
    """Join a list of arrays along an existing `axis` (default the last)."""

    def __init__(self, scope: str = "CONCAT"):
        super().__init__(scope)

    def run(self, t, axis: int = -1):
        return torch.cat(t, axis)


class Stack(Craft):
    """Stack a list of same-shape arrays along a new `axis` (default the last)."""

    def __init__(self, scope: str = "STACK"):
        super().__init__(scope)

    def run(self, t, axis: int = -1):
        return torch.stack(t, axis)
