"""Image-quality ops of Comburant: Blur, Sharpen, Noise, JPEG, WebP (uint8 or float leaves in [0, 1]).

Magnitudes (sigma, amount, std, quality) are fixed when given as a number and drawn uniformly
per call when given as a (lo, hi) pair.
"""

from __future__ import annotations

import cv2
import numpy as np

from .ops_base import Op, channels, per_frame, span, to_dtype, unit

__all__ = ["Blur", "Sharpen", "Noise", "JPEG", "WebP"]


class Blur(Op):
    """Gaussian blur with standard deviation `sigma` in pixels (OpenCV picks the kernel size from sigma).

    Borders mirror without repeating the edge pixel.
    """

    def __init__(self, sigma: float | tuple[float, float] = (0.1, 2.0)):
        self.sigma = span(sigma, "Blur sigma", low=0.0)
        if self.sigma[1] <= 0:
            raise ValueError(f"Blur sigma must be positive, got {sigma}")

    def draw(self, rng, group):
        return max(rng.uniform(*self.sigma), 1e-3)

    def apply(self, x, params, site):
        return per_frame(lambda f: cv2.GaussianBlur(f, (0, 0), params), x)


class Sharpen(Op):
    """Unsharp mask: x + amount * (x - blur(x)), the blur Gaussian with `sigma` pixels; amount 0 is a no-op."""

    def __init__(self, amount: float | tuple[float, float], sigma: float = 1.0):
        self.amount = span(amount, "Sharpen amount", low=0.0)
        if sigma <= 0:
            raise ValueError(f"Sharpen sigma must be positive, got {sigma}")
        self.sigma = float(sigma)

    def draw(self, rng, group):
        return rng.uniform(*self.amount)

    def apply(self, x, params, site):
        blurred = per_frame(lambda f: cv2.GaussianBlur(f, (0, 0), self.sigma), x)
        if x.dtype == np.uint8:
            flat, soft = x.reshape(x.shape[0], -1), blurred.reshape(x.shape[0], -1)
            return cv2.addWeighted(flat, 1 + params, soft, -params, 0).reshape(x.shape)
        return to_dtype(x + np.float32(params) * (x - blurred), x)


class Noise(Op):
    """Add Gaussian noise of standard deviation `std` (a fraction of the full range), clipped, never wrapped.

    One noise field is drawn per call: the leaves of a paired list of equal size, and every frame
    of a sequence, get the same field.
    """

    def __init__(self, std: float | tuple[float, float]):
        self.std = span(std, "Noise std", low=0.0)

    def draw(self, rng, group):
        return rng.uniform(*self.std), int(rng.integers(2**63)), {}

    def apply(self, x, params, site):
        std, seed, fields = params  # fields: the call's noise per frame shape, drawn once from `seed`
        frame = x.shape[1:] if x.ndim == 4 else x.shape
        if frame not in fields:
            fields[frame] = np.random.default_rng(seed).standard_normal(frame, dtype=np.float32)
        return to_dtype(x.astype(np.float32) + fields[frame] * np.float32(std * unit(x)), x)


class _Codec(Op):
    """Re-encode and decode through an OpenCV image codec at a drawn integer quality."""

    ext, flag, top = "", 0, 100

    def __init__(self, quality: int | tuple[int, int]):
        lo, hi = span(quality, f"{type(self).__name__} quality", low=1, high=self.top)
        self.quality = (int(lo), int(hi))

    def draw(self, rng, group):
        return int(rng.integers(self.quality[0], self.quality[1] + 1))

    def apply(self, x, params, site):
        c = channels(x)
        if c not in (1, 3):
            raise ValueError(f"{type(self).__name__} needs an RGB or grey image, got shape {x.shape}")
        data = x if x.dtype == np.uint8 else np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
        out = per_frame(lambda f: self._round_trip(f, c, params), data)
        return out if x.dtype == np.uint8 else (out.astype(np.float32) / np.float32(255)).astype(x.dtype)

    def _round_trip(self, image: np.ndarray, c: int, quality: int) -> np.ndarray:
        if c == 3:  # OpenCV codecs take BGR; the YCbCr conversion depends on the channel order
            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(self.ext, image, [self.flag, quality])
        if not ok:
            raise RuntimeError(f"{type(self).__name__}: OpenCV could not encode an image of shape {image.shape}")
        if c == 1:
            return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
        return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


class JPEG(_Codec):
    """JPEG re-encoding at an integer quality in [1, 100] (fixed, or drawn uniformly from a (lo, hi) range)."""

    ext, flag, top = ".jpg", cv2.IMWRITE_JPEG_QUALITY, 100

    def __init__(self, quality: int | tuple[int, int] = (30, 95)):
        super().__init__(quality)


class WebP(_Codec):
    """WebP re-encoding at an integer quality in [1, 100] (fixed, or drawn uniformly from a (lo, hi) range)."""

    ext, flag, top = ".webp", cv2.IMWRITE_WEBP_QUALITY, 100

    def __init__(self, quality: int | tuple[int, int] = (30, 95)):
        super().__init__(quality)
