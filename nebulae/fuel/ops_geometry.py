"""Geometric ops of Comburant: Flip, Crop, Rotate, Resize, Pad (OpenCV, HWC leaves).

Geometry is drawn for the first leaf of a group; a leaf of another size (a low/high-resolution
pair) gets the same window, padding or output size scaled by its size ratio to the first leaf.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from .ops_base import Op, channels, check_interp, hw, interp_flag, per_frame, ratio, size_pair, span

__all__ = ["Flip", "Crop", "Rotate", "Resize", "Pad"]

_FLIP_AXES = ("horizontal", "vertical", "both")
_BORDERS = {"constant": cv2.BORDER_CONSTANT, "reflect": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE}


class Flip(Op):
    """Random flip: 'horizontal' mirrors left-right, 'vertical' upside-down, each with probability `p`.

    'both' draws the two flips independently, each with probability `p`.
    """

    def __init__(self, axis: str = "horizontal", p: float = 0.5):
        if axis not in _FLIP_AXES:
            raise ValueError(f"Flip axis must be one of {', '.join(_FLIP_AXES)}, got {axis!r}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Flip p must be in [0, 1], got {p}")
        self.axis, self.p = axis, float(p)

    def draw(self, rng, group):
        lr = self.axis != "vertical" and rng.random() < self.p
        ud = self.axis != "horizontal" and rng.random() < self.p
        return lr, ud

    def apply(self, x, params, site):
        lr, ud = params
        if not (lr or ud):
            return x
        code = -1 if lr and ud else (1 if lr else 0)
        return per_frame(lambda f: cv2.flip(f, code), x)


class Crop(Op):
    """Random-resized crop (torchvision RandomResizedCrop), resized to `size` = (height, width) or an int.

    Each of up to 10 attempts draws an area fraction uniformly in `scale` and an aspect ratio
    (width / height) LOG-uniformly in `ratio`, and keeps the first window that fits, at a uniform
    position; otherwise a central crop clamped to `ratio`. `scale=None` instead takes a plain crop
    of exactly `size` at a uniform position (no resize; the image must be at least that large).
    `interp` names the resize interpolation, or gives one per position of a paired list.
    """

    def __init__(
        self,
        size: int | Sequence[int],
        scale: Sequence[float] | None = (0.08, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        interp: str | Sequence[str] = "linear",
    ):
        self.size = size_pair(size, "Crop size")
        self.scale = None if scale is None else span(scale, "Crop scale", low=0.0, high=1.0)
        if self.scale is not None and self.scale[1] <= 0:
            raise ValueError(f"Crop scale must include a positive area fraction, got {scale}")
        self.ratio = span(ratio, "Crop ratio")
        if self.ratio[0] <= 0:
            raise ValueError(f"Crop ratio must be positive, got {ratio}")
        self.interp = check_interp(interp, "Crop")

    def draw(self, rng, group):
        H, W = hw(group[0])
        if self.scale is None:
            h, w = self.size
            if h > H or w > W:
                raise ValueError(f"Crop: a plain crop of {self.size} needs an image at least that large, got {(H, W)}")
            return int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1)), h, w, (H, W)
        area, log_ratio = H * W, (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < w <= W and 0 < h <= H:
                return int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1)), h, w, (H, W)
        in_ratio = W / H
        if in_ratio < self.ratio[0]:
            w, h = W, round(W / self.ratio[0])
        elif in_ratio > self.ratio[1]:
            h, w = H, round(H * self.ratio[1])
        else:
            h, w = H, W
        return (H - h) // 2, (W - w) // 2, h, w, (H, W)

    def apply(self, x, params, site):
        top, left, h, w, ref = params
        ry, rx = ratio(x, ref)
        top, left, h, w = round(top * ry), round(left * rx), max(1, round(h * ry)), max(1, round(w * rx))
        window = x[:, top : top + h, left : left + w] if x.ndim == 4 else x[top : top + h, left : left + w]
        if self.scale is None:
            return np.ascontiguousarray(window)
        out = (max(1, round(self.size[1] * rx)), max(1, round(self.size[0] * ry)))
        flag = interp_flag(self.interp, site.pos)
        return per_frame(lambda f: cv2.resize(f, out, interpolation=flag), window)


class Rotate(Op):
    """Rotate counter-clockwise about the centre by an angle drawn uniformly in (-degrees, degrees).

    `degrees` may be a (lo, hi) range instead. The canvas keeps its size; uncovered pixels get
    `fill` (in the image's units: 0-255 for uint8). `interp` is a name or one per position.
    """

    def __init__(self, degrees: float | Sequence[float], interp: str | Sequence[str] = "linear", fill: float = 0):
        self.degrees = span(degrees, "Rotate degrees", symmetric=True)
        self.interp = check_interp(interp, "Rotate")
        self.fill = float(fill)

    def draw(self, rng, group):
        return rng.uniform(*self.degrees)

    def apply(self, x, params, site):
        H, W = hw(x)
        matrix = cv2.getRotationMatrix2D(((W - 1) / 2, (H - 1) / 2), params, 1.0)
        flag, fill = interp_flag(self.interp, site.pos), (self.fill,) * 4

        def warp(f):
            return cv2.warpAffine(f, matrix, (W, H), flags=flag, borderMode=cv2.BORDER_CONSTANT, borderValue=fill)

        if channels(x) <= 4:
            return per_frame(warp, x)
        return np.concatenate([per_frame(warp, x[..., c : c + 4]) for c in range(0, x.shape[-1], 4)], axis=-1)


class Resize(Op):
    """Resize to `size` = (height, width), or with an int, the shorter side to `size` keeping the aspect ratio.

    `interp`: 'nearest', 'linear', 'cubic', 'area' or 'lanczos', or a tuple of them, one per position.
    """

    def __init__(self, size: int | Sequence[int], interp: str | Sequence[str] = "linear"):
        self.size = size if isinstance(size, (int, np.integer)) and size > 0 else size_pair(size, "Resize size")
        self.interp = check_interp(interp, "Resize")

    def draw(self, rng, group):
        H, W = hw(group[0])
        if isinstance(self.size, tuple):
            return self.size, (H, W)
        short = self.size / min(H, W)
        return (max(1, round(H * short)), max(1, round(W * short))), (H, W)

    def apply(self, x, params, site):
        (h, w), ref = params
        ry, rx = ratio(x, ref)
        out = (max(1, round(w * rx)), max(1, round(h * ry)))
        flag = interp_flag(self.interp, site.pos)
        return per_frame(lambda f: cv2.resize(f, out, interpolation=flag), x)


class Pad(Op):
    """Pad by `padding`: an int (every side), (height, width) (top=bottom, left=right) or (top, bottom, left, right).

    `mode`: 'constant' (with `value`, in the image's units), 'reflect' (mirror without repeating
    the edge, NumPy's 'reflect') or 'replicate' (repeat the edge).
    """

    def __init__(self, padding: int | Sequence[int], mode: str = "constant", value: float = 0):
        if isinstance(padding, (int, np.integer)):
            padding = (padding,) * 4
        elif isinstance(padding, Sequence) and len(padding) == 2:
            padding = (padding[0], padding[0], padding[1], padding[1])
        if not (
            isinstance(padding, Sequence)
            and len(padding) == 4
            and all(isinstance(p, (int, np.integer)) and p >= 0 for p in padding)
        ):
            raise ValueError(
                f"Pad padding must be non-negative ints: p, (h, w) or (top, bottom, left, right); got {padding!r}"
            )
        if mode not in _BORDERS:
            raise ValueError(f"Pad mode must be one of {', '.join(_BORDERS)}, got {mode!r}")
        self.padding, self.mode, self.value = tuple(int(p) for p in padding), mode, float(value)

    def draw(self, rng, group):
        return hw(group[0])

    def apply(self, x, params, site):
        ry, rx = ratio(x, params)
        t, b, l, r = self.padding
        t, b, l, r = round(t * ry), round(b * ry), round(l * rx), round(r * rx)
        if channels(x) <= 4:
            border = _BORDERS[self.mode]
            return per_frame(lambda f: cv2.copyMakeBorder(f, t, b, l, r, border, value=(self.value,) * 4), x)
        widths = [(t, b), (l, r), (0, 0)]
        if x.ndim == 4:
            widths.insert(0, (0, 0))
        mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}[self.mode]
        kwargs = {"constant_values": self.value} if mode == "constant" else {}
        return np.pad(x, widths, mode=mode, **kwargs)
