"""Weights the JAX backend stores in another axis order than the neutral (torch) one, because XLA runs faster.

Convolution kernels are neutral (O, I/groups, *spatial), as torch stores them; here they are held spatial-first,
(*spatial, I/groups, O) (HWIO, as Flax and Keras keep them): XLA:CPU's convolutions and their gradients then
need no relayout of the kernel or of its optimizer slots in each step. A stored Variable carries the axes it
was permuted by as metadata; every boundary (export and import, `weight_shape`, Prober gradients, EMA shadows,
summaries, `.h5`) goes through `to_neutral`/`to_stored` so that users see the neutral layout. Anchors hold the
stored layout (format 2); `from_format_1` reads the older, all-neutral ones.
"""

from __future__ import annotations

import numpy as np
from flax import nnx

from nebulae.astro.crafts.craft import CONV_KERNEL

AXES = "stored_axes"  # Variable metadata: the neutral axes in stored order


def stored_axes_for(layout: str | None, ndim: int) -> tuple[int, ...] | None:
    """The permutation that takes a neutral array of `layout` to its stored order (None: stored as it is)."""
    if layout == CONV_KERNEL and ndim >= 3:
        return (*range(2, ndim), 1, 0)
    return None


def axes_of(variable) -> tuple[int, ...] | None:
    """The stored permutation of a Variable (None for a plain one or a bare array)."""
    if isinstance(variable, nnx.Variable):
        return variable.get_metadata().get(AXES)
    return None


def to_neutral(array, axes: tuple[int, ...] | None):
    """A stored array in the neutral layout (NumPy or JAX alike)."""
    return array if axes is None else array.transpose(np.argsort(axes))


def to_stored(array, axes: tuple[int, ...] | None):
    """A neutral array in the stored layout."""
    return array if axes is None else array.transpose(axes)


def from_format_1(flat: dict, expected: dict[str, tuple]) -> dict:
    """The arrays of a format-1 anchor (written before kernels were stored spatial-first) in today's layout.

    Format 1 held every array neutral; a conv kernel, and each optimizer slot of its shape, is the array
    whose shape differs from the craft's and that the conv permutation turns into it.
    """
    out = dict(flat)
    for key, array in flat.items():
        want = expected.get(key)
        axes = stored_axes_for(CONV_KERNEL, np.ndim(array))
        shape = tuple(np.shape(array))
        if want is not None and axes and shape != tuple(want) and neutral_shape(want, axes) == shape:
            out[key] = np.ascontiguousarray(to_stored(np.asarray(array), axes))
    return out


def neutral_shape(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    return tuple(shape) if axes is None else tuple(shape[i] for i in np.argsort(axes))
