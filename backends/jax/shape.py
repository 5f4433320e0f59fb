"""Shape crafts on JAX: Roll, Reshape, Permute, Expand, Squash, Tile, Concat and Stack."""

from __future__ import annotations

import jax.numpy as jnp

from .craft import Craft

__all__ = ["Roll", "Reshape", "Permute", "Expand", "Squash", "Tile", "Concat", "Stack"]


class Roll(Craft):
    """Cyclic shift by `shift` along `axis` (int or tuples of equal length); axis None rolls the flattened array."""

    def __init__(self, scope: str = "ROLL"):
        super().__init__(scope)

    def run(self, x, shift: int | tuple[int, ...], axis: int | tuple[int, ...] | None = None):
        return jnp.roll(x, shift, axis)


class Reshape(Craft):
    """Reshape to `shape` (one entry may be -1)."""

    def __init__(self, scope: str = "RESHAPE"):
        super().__init__(scope)

    def run(self, x, shape: tuple[int, ...]):
        return jnp.reshape(x, tuple(shape))


class Permute(Craft):
    """Reorder the dims: output dim i is input dim order[i]."""

    def __init__(self, scope: str = "PERMUTE"):
        super().__init__(scope)

    def run(self, x, order: tuple[int, ...]):
        return jnp.transpose(x, tuple(order))


class Expand(Craft):
    """Insert a dim of size 1 at `axis` (torch.unsqueeze; negative axes count from the end of the result)."""

    def __init__(self, scope: str = "EXPAND"):
        super().__init__(scope)

    def run(self, x, axis: int = 0):
        return jnp.expand_dims(x, axis)


class Squash(Craft):
    """Remove dims of size 1: all of them (axis None) or those of `axis` (int or tuple) that have size 1.

    As torch.squeeze, an `axis` whose size is not 1 is left as it is (no error) on both engines.
    """

    def __init__(self, scope: str = "SQUASH"):
        super().__init__(scope)

    def run(self, x, axis: int | tuple[int, ...] | None = None):
        if axis is None:
            return jnp.squeeze(x)
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        for a in axes:
            if not -x.ndim <= a < x.ndim:
                raise IndexError(f"Squash: axis {a} is out of range for a {x.ndim}-D array")
        return jnp.squeeze(x, tuple(a for a in axes if x.shape[a] == 1))


class Tile(Craft):
    """Repeat x `times[i]` times along dim i (torch's `repeat`): len(times) >= x.ndim; extra leading counts add dims."""

    def __init__(self, scope: str = "TILE"):
        super().__init__(scope)

    def run(self, x, times: tuple[int, ...]):
        if len(times) < x.ndim:
            raise ValueError(f"Tile needs one repeat count per dim of x ({x.ndim}), got times={tuple(times)}")
        return jnp.tile(x, tuple(times))


class Concat(Craft):
    """Join a list of arrays along an existing `axis` (default the last)."""

    def __init__(self, scope: str = "CONCAT"):
        super().__init__(scope)

    def run(self, t, axis: int = -1):
        return jnp.concatenate(t, axis)


class Stack(Craft):
    """Stack a list of same-shape arrays along a new `axis` (default the last)."""

    def __init__(self, scope: str = "STACK"):
        super().__init__(scope)

    def run(self, t, axis: int = -1):
        return jnp.stack(t, axis)
