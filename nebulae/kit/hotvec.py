"""hotvec2mtx / mtx2hotvec: class labels as (multi-)hot matrices and back."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["hotvec2mtx", "mtx2hotvec"]


def _indices(label) -> list[int]:
    if isinstance(label, str):
        return [int(p) for p in label.replace(" ", "").split(",") if p != ""]
    if isinstance(label, (int, np.integer)):
        return [int(label)]
    if isinstance(label, Iterable):
        return [int(v) for v in label]
    raise TypeError(f"hotvec2mtx: a label must be an int, a list of ints or a string like '0,2'; got {label!r}")


def hotvec2mtx(labels, nclasses: int, on_value: float = 1, off_value: float = 0) -> np.ndarray:
    """A float32 (B, nclasses) matrix with `on_value` at each label's classes: labels are ints, lists of
    ints (multi-label) or strings like '0,2'."""
    if isinstance(labels, np.ndarray) and labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
        labels = labels.tolist()
    out = np.full((len(labels), nclasses), off_value, dtype=np.float32)
    for row, label in enumerate(labels):
        idx = _indices(label)
        bad = [i for i in idx if not 0 <= i < nclasses]
        if bad:
            raise ValueError(f"hotvec2mtx: label {label!r} (row {row}) has classes {bad} outside [0, {nclasses})")
        out[row, idx] = on_value
    return out


def mtx2hotvec(mtx, off_value: float = 0) -> list[list[int]]:
    """The class indices of every row of a (multi-)hot matrix: the columns whose value is not `off_value`."""
    mtx = np.asarray(mtx)
    if mtx.ndim != 2:
        raise ValueError(f"mtx2hotvec needs a 2-D matrix, got shape {mtx.shape}")
    return [np.flatnonzero(row != off_value).tolist() for row in mtx]
