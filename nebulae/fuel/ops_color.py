"""Colour ops of Comburant: Brighten, Contrast, Saturate, Hue (RGB leaves; uint8 or float in [0, 1]).

Results are clipped to the valid range (and rounded for uint8), never wrapped. uint8 images go
through a 256-entry lookup table where the op is a per-value map.
"""

from __future__ import annotations

import cv2
import numpy as np

from .ops_base import GREY_WEIGHTS, Op, channels, lut, per_frame, pixels, span, to_dtype, unit

__all__ = ["Brighten", "Contrast", "Saturate", "Hue"]

_LEVELS = np.arange(256, dtype=np.float32)


def _blend(a: np.ndarray, alpha: float, b: np.ndarray, beta: float, gamma: float, like=None) -> np.ndarray:
    """alpha * a + beta * b + gamma in `like`'s dtype (default a's), saturated (and rounded) to its range."""
    like = a if like is None else like
    if like.dtype == np.uint8:
        return cv2.addWeighted(a, alpha, b, beta, gamma, dtype=cv2.CV_8U)
    return np.clip(cv2.addWeighted(a, alpha, b, beta, gamma), 0.0, 1.0).astype(like.dtype, copy=False)


def _rgb_or_grey(x: np.ndarray, what: str) -> int:
    c = channels(x)
    if c not in (1, 3):
        raise ValueError(f"{what} needs an RGB or grey image, got shape {x.shape}")
    return c


class Brighten(Op):
    """Add a brightness shift drawn uniformly in (-delta, delta), in units of the full range (x 255 for uint8).

    `delta` may be a (lo, hi) range instead. Works on any number of channels.
    """

    def __init__(self, delta: float | tuple[float, float]):
        self.delta = span(delta, "Brighten delta", symmetric=True, low=-1.0, high=1.0)

    def draw(self, rng, group):
        return rng.uniform(*self.delta)

    def apply(self, x, params, site):
        if x.dtype == np.uint8:
            return lut(x, to_dtype(_LEVELS + params * 255.0, x))
        return to_dtype(x + np.float32(params), x)


class Contrast(Op):
    """Scale the distance to the image's mean grey level by a factor drawn uniformly in [lo, hi].

    The mean is the luma mean of each image (of each frame of a sequence), as torchvision's
    `adjust_contrast`; 1 keeps the image, 0 makes it flat grey.
    """

    def __init__(self, lo: float, hi: float):
        self.factor = span((lo, hi), "Contrast (lo, hi)", low=0.0)

    def draw(self, rng, group):
        return rng.uniform(*self.factor)

    def apply(self, x, params, site):
        c = _rgb_or_grey(x, "Contrast")

        def frame(f):
            means = cv2.mean(f)
            mean = float(np.dot(means[:3], GREY_WEIGHTS)) if c == 3 else means[0]
            return _blend(f, params, f, 0.0, (1.0 - params) * mean)

        return per_frame(frame, x)


class Saturate(Op):
    """Blend each pixel with its grey level by a factor drawn uniformly in [lo, hi] (0: grey, 1: unchanged).

    Grey images (2-D or one channel) are left as they are.
    """

    def __init__(self, lo: float, hi: float):
        self.factor = span((lo, hi), "Saturate (lo, hi)", low=0.0)

    def draw(self, rng, group):
        return rng.uniform(*self.factor)

    def apply(self, x, params, site):
        if _rgb_or_grey(x, "Saturate") == 1:
            return x
        rgb = pixels(x).astype(np.float32)
        level = cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        return _blend(rgb, params, level, 1.0 - params, 0.0, like=x).reshape(x.shape)


class Hue(Op):
    """Rotate the hue (in HSV) by a fraction of the full circle drawn uniformly in (-delta, delta), delta <= 0.5.

    `delta` may be a (lo, hi) range within [-0.5, 0.5]. Grey images are left as they are.
    """

    def __init__(self, delta: float | tuple[float, float]):
        self.delta = span(delta, "Hue delta", symmetric=True, low=-0.5, high=0.5)

    def draw(self, rng, group):
        return rng.uniform(*self.delta)

    def apply(self, x, params, site):
        if _rgb_or_grey(x, "Hue") == 1:
            return x
        scale = unit(x)
        hsv = cv2.cvtColor(pixels(x.astype(np.float32) / np.float32(scale)), cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0] + np.float32(params * 360.0)) % np.float32(360.0)
        rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).reshape(x.shape)
        return to_dtype(rgb * np.float32(scale), x)
