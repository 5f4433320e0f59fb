"""Batch augmentation on torch, inside the step: random flip, crop, brightness, contrast, saturation, hue.

Each craft augments an (N, C, H, W) float batch in [0, 1] per sample, in train mode only (identity
in eval). `run(x)` = `transform(x, sample(x))`: `sample` draws the per-sample parameters from torch's
generator, `transform` is the deterministic core that the JAX mirror (dm-pix) matches exactly. The
maths follows dm-pix / tf.image: contrast scales around each channel's mean, saturation scales
HSV saturation (clipped to [0, 1]), hue shifts HSV hue by a fraction of the circle; brightness
and contrast results are clipped to [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nebulae.astro import init as _init
from nebulae.astro.args import check_batch as _batch
from nebulae.astro.args import check_probability as _probability
from nebulae.astro.args import check_span as _span
from nebulae.astro.args import crop_room as _crop_room
from nebulae.astro.args import crop_size as _crop_size

from .craft import Craft

__all__ = ["RandFlip", "RandCrop", "RandBrighten", "RandContrast", "RandSaturate", "RandHue"]


def _uniform(x, lo: float, hi: float):
    return torch.rand(x.shape[0], device=x.device) * (hi - lo) + lo


def _rgb_to_hsv(r, g, b):
    """dm-pix's RGB -> HSV on planes, operation for operation."""
    value = torch.maximum(torch.maximum(r, g), b)
    range_ = value - torch.minimum(torch.minimum(r, g), b)
    safe_value = torch.where(value > 0, value, torch.ones_like(value))
    safe_range = torch.where(range_ > 0, range_, torch.ones_like(range_))
    saturation = torch.where(value > 0, range_ / safe_value, torch.zeros_like(value))
    norm = 1.0 / (6.0 * safe_range)
    hue = torch.where(value == g, norm * (b - r) + 2.0 / 6.0, norm * (r - g) + 4.0 / 6.0)
    hue = torch.where(value == r, norm * (g - b), hue)
    hue = torch.where(range_ > 0, hue, torch.zeros_like(hue)) + (hue < 0).to(hue.dtype)
    return hue, saturation, value


def _hsv_to_rgb(hue, saturation, value):
    """dm-pix's HSV -> RGB on planes, operation for operation."""
    dh = torch.remainder(hue, 1.0) * 6.0
    dr = torch.clamp(torch.abs(dh - 3.0) - 1.0, 0.0, 1.0)
    dg = torch.clamp(2.0 - torch.abs(dh - 2.0), 0.0, 1.0)
    db = torch.clamp(2.0 - torch.abs(dh - 4.0), 0.0, 1.0)
    one_minus_s = 1.0 - saturation
    planes = [value * (one_minus_s + saturation * d) for d in (dr, dg, db)]
    return torch.stack(planes, dim=1)


class RandFlip(Craft):
    """Mirror each image of the batch left-right with probability `p` (train mode only).

    `sample(x)` gives a boolean flag per sample; `transform(x, flags)` flips the flagged ones.
    """

    def __init__(self, p: float = 0.5, scope: str = "RANDFLIP"):
        super().__init__(scope)
        self.p = _probability(p, "RandFlip")
        self.seed = _init.draw_seed()  # kept in step with JAX's stream; torch draws from its global generator

    def sample(self, x):
        """Per-sample parameters for batch `x`: a boolean flip flag per sample, shape (N,)."""
        return torch.rand(x.shape[0], device=x.device) < self.p

    def transform(self, x, params):
        """Flip the samples of `x` whose flag in `params` is set."""
        _batch(x, "RandFlip")
        return torch.where(params.reshape(-1, 1, 1, 1), x.flip(-1), x)

    def run(self, x):
        return self.transform(x, self.sample(x)) if self.is_training() else x


class RandCrop(Craft):
    """Crop each image to `size` (an int or (height, width)) at a random position, after zero `padding` on every side.

    CIFAR-style: `RandCrop(32, padding=4)` keeps 32x32 images at 32x32, shifted by up to 4 pixels.
    `sample(x)` gives (top, left) offsets into the padded images, shape (N, 2).
    """

    def __init__(self, size: int | tuple[int, int], padding: int = 0, scope: str = "RANDCROP"):
        super().__init__(scope)
        self.size, self.padding = _crop_size(size, padding, "RandCrop")
        self.seed = _init.draw_seed()  # kept in step with JAX's stream; torch draws from its global generator

    def _room(self, x) -> tuple[int, int]:
        return _crop_room(x, self.size, self.padding, "RandCrop")

    def sample(self, x):
        """Per-sample parameters for batch `x`: (top, left) offsets into the padded images, shape (N, 2)."""
        rows, cols = self._room(x)
        n = x.shape[0]
        top = torch.randint(0, rows + 1, (n,), device=x.device)
        left = torch.randint(0, cols + 1, (n,), device=x.device)
        return torch.stack([top, left], dim=1)

    def transform(self, x, params):
        """Crop `size` from each zero-padded sample of `x` at its (top, left) offset in `params`."""
        self._room(x)
        p, (h, w) = self.padding, self.size
        padded = F.pad(x, (p, p, p, p)) if p else x
        offsets = params.to(device=x.device, dtype=torch.long)
        rows = offsets[:, 0:1] + torch.arange(h, device=x.device)  # (N, h)
        cols = offsets[:, 1:2] + torch.arange(w, device=x.device)  # (N, w)
        batch = torch.arange(x.shape[0], device=x.device)[:, None, None]
        return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()

    def run(self, x):
        return self.transform(x, self.sample(x)) if self.is_training() else x


class RandBrighten(Craft):
    """Add a per-sample brightness shift drawn uniformly in (-delta, delta), then clip to [0, 1] (train mode only)."""

    def __init__(self, delta: float, scope: str = "RANDBRIGHTEN"):
        super().__init__(scope)
        self.range = _span(-delta, delta, "RandBrighten delta", -1.0, 1.0)
        self.seed = _init.draw_seed()  # kept in step with JAX's stream; torch draws from its global generator

    def sample(self, x):
        """Per-sample parameters for batch `x`: the additive shift per sample, shape (N,)."""
        return _uniform(x, *self.range)

    def transform(self, x, params):
        """Shift each sample of `x` by its value in `params`, clipped to [0, 1]."""
        _batch(x, "RandBrighten")
        return torch.clamp(x + params.to(x.dtype).reshape(-1, 1, 1, 1), 0.0, 1.0)

    def run(self, x):
        return self.transform(x, self.sample(x)) if self.is_training() else x


class RandContrast(Craft):
    """Scale each channel's distance to its spatial mean by a per-sample factor in [lo, hi], clipped to [0, 1].

    As dm-pix / tf.image `adjust_contrast` (per-channel mean, unlike fuel.Contrast's luma mean).
    """

    def __init__(self, lo: float, hi: float, scope: str = "RANDCONTRAST"):
        super().__init__(scope)
        self.range = _span(lo, hi, "RandContrast (lo, hi)", 0.0)
        self.seed = _init.draw_seed()  # kept in step with JAX's stream; torch draws from its global generator

    def sample(self, x):
        """Per-sample parameters for batch `x`: the contrast factor per sample, shape (N,)."""
        return _uniform(x, *self.range)

    def transform(self, x, params):
        """Scale each sample of `x` around its channel means by its factor in `params`, clipped to [0, 1]."""
        _batch(x, "RandContrast")
        mean = x.mean(dim=(-2, -1), keepdim=True)
        return torch.clamp(params.to(x.dtype).reshape(-1, 1, 1, 1) * (x - mean) + mean, 0.0, 1.0)

    def run(self, x):
        return self.transform(x, self.sample(x)) if self.is_training() else x


class RandSaturate(Craft):
    """Multiply the HSV saturation of each RGB sample by a factor in [lo, hi] (clipped to [0, 1]).

    As dm-pix / tf.image `adjust_saturation`.
    """

    def __init__(self, lo: float, hi: float, scope: str = "RANDSATURATE"):
        super().__init__(scope)
        self.range = _span(lo, hi, "RandSaturate (lo, hi)", 0.0)
        self.seed = _init.draw_seed()  # kept in step with JAX's stream; torch draws from its global generator

    def sample(self, x):
        """Per-sample parameters for batch `x`: the saturation factor per sample, shape (N,)."""
        return _uniform(x, *self.range)

    def transform(self, x, params):
        """Scale the saturation of each sample of `x` by its factor in `params`."""
        _batch(x, "RandSaturate", rgb=True)
        hue, saturation, value = _rgb_to_hsv(x[:, 0], x[:, 1], x[:, 2])
        factor = params.to(x.dtype).reshape(-1, 1, 1)
        return _hsv_to_rgb(hue, torch.clamp(saturation * factor, 0.0, 1.0), value)

    def run(self, x):
        return self.transform(x, self.sample(x)) if self.is_training() else x


class RandHue(Craft):
    """Shift the HSV hue of each RGB sample by a fraction of the circle drawn uniformly in (-delta, delta).

    `delta` <= 0.5. As dm-pix / tf.image `adjust_hue`.
    """

    def __init__(self, delta: float, scope: str = "RANDHUE"):
        super().__init__(scope)
        self.range = _span(-delta, delta, "RandHue delta", -0.5, 0.5)
        self.seed = _init.draw_seed()  # kept in step with JAX's stream; torch draws from its global generator

    def sample(self, x):
        """Per-sample parameters for batch `x`: the hue shift per sample, shape (N,)."""
        return _uniform(x, *self.range)

    def transform(self, x, params):
        """Shift the hue of each sample of `x` by its value in `params` (a fraction of the circle)."""
        _batch(x, "RandHue", rgb=True)
        hue, saturation, value = _rgb_to_hsv(x[:, 0], x[:, 1], x[:, 2])
        return _hsv_to_rgb(hue + params.to(x.dtype).reshape(-1, 1, 1), saturation, value)

    def run(self, x):
        return self.transform(x, self.sample(x)) if self.is_training() else x
