"""The base of Comburant's augmentation ops, with the helpers they share (parameter ranges, axes, OpenCV).

An op works in two halves: `draw(rng, group)` draws the random parameters of one call ONCE for a
group of leaves (an image and its mask, or the frames of a sequence), and `apply(x, params, site)`
applies them, deterministically, to each leaf. Leaves are NumPy arrays: (H, W) grey, (H, W, C)
or a (T, H, W, C) sequence; uint8 in [0, 255] or floating in [0, 1] (after `End`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import cv2
import numpy as np

INTERP = {
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}
GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma, as OpenCV and torchvision


class Site(NamedTuple):
    """Where a leaf sits when an op applies to it: its position in the paired list, and the layout."""

    pos: int
    chw: bool


class Op:
    """Base class of an augmentation op: `draw` draws one call's parameters, `apply` applies them to a leaf.

    Subclass it for a custom op; set `needs_hwc = False` if it also works after `HWC2CHW`.
    """

    needs_hwc = True  # geometric/colour ops read (H, W, C); only layout-neutral ops may follow HWC2CHW
    structural = False  # End, HWC2CHW, Sampling: fixed pipeline steps, never inside Random/Only

    def draw(self, rng: np.random.Generator, group: Sequence[np.ndarray]) -> Any:
        """The random parameters of one call, drawn once for every leaf of `group` (none by default)."""
        return None

    def apply(self, x: np.ndarray, params: Any, site: Site) -> np.ndarray:
        """`x` transformed with `params` (the same for every leaf of a group)."""
        raise NotImplementedError(f"{type(self).__name__} must implement apply(x, params, site)")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


def span(value, what: str, symmetric: bool = False, low: float | None = None, high: float | None = None):
    """(lo, hi) of a parameter: a pair is a range; a scalar v means (-v, v) if `symmetric`, else (v, v)."""
    if isinstance(value, (int, float, np.integer, np.floating)):
        v = float(value)
        if symmetric and v < 0:
            raise ValueError(f"{what} must be >= 0 (it means uniform(-{what}, {what})), got {value}")
        lo, hi = (-v, v) if symmetric else (v, v)
    elif isinstance(value, Sequence) and len(value) == 2:
        lo, hi = float(value[0]), float(value[1])
    else:
        raise ValueError(f"{what} must be a number or a (lo, hi) pair, got {value!r}")
    if lo > hi:
        raise ValueError(f"{what}: lo must be <= hi, got ({lo}, {hi})")
    if (low is not None and lo < low) or (high is not None and hi > high):
        raise ValueError(f"{what} must lie in [{low}, {high}], got ({lo}, {hi})")
    return lo, hi


def size_pair(size, what: str) -> tuple[int, int]:
    """(height, width) from an int (square) or a pair; both positive."""
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    if not (isinstance(size, Sequence) and len(size) == 2 and all(isinstance(s, (int, np.integer)) for s in size)):
        raise ValueError(f"{what} must be an int or a (height, width) pair of ints, got {size!r}")
    if min(size) <= 0:
        raise ValueError(f"{what} must be positive, got {tuple(size)}")
    return int(size[0]), int(size[1])


def interp_flag(interp, pos: int) -> int:
    """The OpenCV flag of an interpolation name, or of entry `pos` of a per-position tuple (last repeats)."""
    name = interp if isinstance(interp, str) else interp[min(pos, len(interp) - 1)]
    return INTERP[name]


def check_interp(interp, what: str):
    """Validate an interpolation name or a per-position tuple of names; returns it unchanged."""
    names = [interp] if isinstance(interp, str) else list(interp)
    bad = [n for n in names if n not in INTERP]
    if not names or bad:
        raise ValueError(f"{what}: interp must be one of {', '.join(INTERP)} (or a tuple of them), got {interp!r}")
    return interp if isinstance(interp, str) else tuple(interp)


def hw(x: np.ndarray) -> tuple[int, int]:
    """(height, width) of a leaf in HWC layout."""
    return x.shape[1:3] if x.ndim == 4 else x.shape[:2]


def channels(x: np.ndarray) -> int:
    """Channels of a leaf in HWC layout (1 for a 2-D grey image)."""
    return 1 if x.ndim == 2 else x.shape[-1]


def ratio(x: np.ndarray, ref: tuple[int, int]) -> tuple[float, float]:
    """(height, width) scale of leaf `x` relative to the reference size of a group's first leaf."""
    h, w = hw(x)
    return h / ref[0], w / ref[1]


def unit(x: np.ndarray) -> float:
    """The intensity scale of a leaf: 255 for uint8, 1 for floating data in [0, 1]."""
    return 255.0 if x.dtype == np.uint8 else 1.0


def to_dtype(y: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Float result `y` clipped to the range of `like`'s dtype and cast back (rounded for uint8)."""
    if like.dtype == np.uint8:
        return np.clip(np.rint(y), 0, 255).astype(np.uint8)
    return np.clip(y, 0.0, 1.0).astype(like.dtype, copy=False)


def per_frame(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """`fn` on a 2-D/3-D image, or on each frame of a (T, H, W, C) sequence; keeps a trailing 1-channel axis."""
    if x.ndim == 4:
        return np.ascontiguousarray(np.stack([per_frame(fn, f) for f in x]))
    y = fn(x)
    if x.ndim == 3 and y.ndim == 2:
        y = y[:, :, None]
    return y


def pixels(x: np.ndarray) -> np.ndarray:
    """A (N, W, C) view of a leaf's pixels, so per-pixel OpenCV calls cover every frame of a sequence at once."""
    return x.reshape(-1, x.shape[-2], x.shape[-1]) if x.ndim == 4 else x


def lut(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Map every uint8 value of `x` (any shape) through a 256-entry uint8 table."""
    flat = np.ascontiguousarray(x).reshape(x.shape[0], -1)
    return cv2.LUT(flat, table).reshape(x.shape)
