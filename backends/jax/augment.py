"""Batch augmentation on JAX, inside the step: random flip, crop, brightness, contrast, saturation, hue (dm-pix).

Each craft augments an (N, C, H, W) float batch in [0, 1] per sample, in train mode only (identity
in eval). `run(x)` = `transform(x, sample(x))`: `sample` draws the per-sample parameters from the
craft's RNG stream (a key and a counter in its state, advanced every train-mode call, so a
compiled step draws anew each step without retracing), `transform` is the deterministic core that
the torch mirror matches exactly. dm-pix works on NCHW directly through `channel_axis=-3`.
Brightness and contrast results are clipped to [0, 1].
"""

from __future__ import annotations

import dm_pix as pix
import jax
import jax.numpy as jnp

from nebulae.astro.args import check_batch as _batch
from nebulae.astro.args import check_probability as _probability
from nebulae.astro.args import check_span as _span
from nebulae.astro.args import crop_room as _crop_room
from nebulae.astro.args import crop_size as _crop_size

from .craft import Craft
from .dropout import draw, new_stream

__all__ = ["RandFlip", "RandCrop", "RandBrighten", "RandContrast", "RandSaturate", "RandHue"]


def _uniform(key, x, lo: float, hi: float):
    return jax.random.uniform(key, (x.shape[0],), jnp.float32, lo, hi)


class RandFlip(Craft):
    """Mirror each image of the batch left-right with probability `p` (train mode only).

    `sample(x)` gives a boolean flag per sample; `transform(x, flags)` flips the flagged ones.
    """

    def __init__(self, p: float = 0.5, scope: str = "RANDFLIP"):
        super().__init__(scope)
        self.p = _probability(p, "RandFlip")
        self.key, self.count = new_stream()

    def sample(self, x):
        """Per-sample parameters for batch `x`: a boolean flip flag per sample, shape (N,)."""
        return jax.random.bernoulli(draw(self.key, self.count), self.p, (x.shape[0],))

    def transform(self, x, params):
        """Flip the samples of `x` whose flag in `params` is set."""
        _batch(x, "RandFlip")
        return jnp.where(jnp.reshape(params, (-1, 1, 1, 1)), pix.flip_left_right(x, channel_axis=-3), x)

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
        self.key, self.count = new_stream()

    def _room(self, x) -> tuple[int, int]:
        return _crop_room(x, self.size, self.padding, "RandCrop")

    def sample(self, x):
        """Per-sample parameters for batch `x`: (top, left) offsets into the padded images, shape (N, 2)."""
        rows, cols = self._room(x)
        k_top, k_left = jax.random.split(draw(self.key, self.count))
        n = x.shape[0]
        top = jax.random.randint(k_top, (n,), 0, rows + 1)
        left = jax.random.randint(k_left, (n,), 0, cols + 1)
        return jnp.stack([top, left], axis=1)

    def transform(self, x, params):
        """Crop `size` from each zero-padded sample of `x` at its (top, left) offset in `params`."""
        self._room(x)
        p, (h, w) = self.padding, self.size
        padded = jnp.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
        offsets = jnp.asarray(params, jnp.int32)

        def crop(image, at):
            return jax.lax.dynamic_slice(image, (0, at[0], at[1]), (image.shape[0], h, w))

        return jax.vmap(crop)(padded, offsets)

    def run(self, x):
        return self.transform(x, self.sample(x)) if self.is_training() else x


class RandBrighten(Craft):
    """Add a per-sample brightness shift drawn uniformly in (-delta, delta), then clip to [0, 1] (train mode only)."""

    def __init__(self, delta: float, scope: str = "RANDBRIGHTEN"):
        super().__init__(scope)
        self.range = _span(-delta, delta, "RandBrighten delta", -1.0, 1.0)
        self.key, self.count = new_stream()

    def sample(self, x):
        """Per-sample parameters for batch `x`: the additive shift per sample, shape (N,)."""
        return _uniform(draw(self.key, self.count), x, *self.range)

    def transform(self, x, params):
        """Shift each sample of `x` by its value in `params`, clipped to [0, 1]."""
        _batch(x, "RandBrighten")
        return jnp.clip(pix.adjust_brightness(x, jnp.reshape(params, (-1, 1, 1, 1)).astype(x.dtype)), 0.0, 1.0)

    def run(self, x):
        return self.transform(x, self.sample(x)) if self.is_training() else x


class RandContrast(Craft):
    """Scale each channel's distance to its spatial mean by a per-sample factor in [lo, hi], clipped to [0, 1].

    As dm-pix / tf.image `adjust_contrast` (per-channel mean, unlike fuel.Contrast's luma mean).
    """

    def __init__(self, lo: float, hi: float, scope: str = "RANDCONTRAST"):
        super().__init__(scope)
        self.range = _span(lo, hi, "RandContrast (lo, hi)", 0.0)
        self.key, self.count = new_stream()

    def sample(self, x):
        """Per-sample parameters for batch `x`: the contrast factor per sample, shape (N,)."""
        return _uniform(draw(self.key, self.count), x, *self.range)

    def transform(self, x, params):
        """Scale each sample of `x` around its channel means by its factor in `params`, clipped to [0, 1]."""
        _batch(x, "RandContrast")
        factor = jnp.reshape(params, (-1, 1, 1, 1)).astype(x.dtype)
        return jnp.clip(pix.adjust_contrast(x, factor, channel_axis=-3), 0.0, 1.0)

    def run(self, x):
        return self.transform(x, self.sample(x)) if self.is_training() else x


class RandSaturate(Craft):
    """Multiply the HSV saturation of each RGB sample by a factor in [lo, hi] (clipped to [0, 1]).

    As dm-pix / tf.image `adjust_saturation`.
    """

    def __init__(self, lo: float, hi: float, scope: str = "RANDSATURATE"):
        super().__init__(scope)
        self.range = _span(lo, hi, "RandSaturate (lo, hi)", 0.0)
        self.key, self.count = new_stream()

    def sample(self, x):
        """Per-sample parameters for batch `x`: the saturation factor per sample, shape (N,)."""
        return _uniform(draw(self.key, self.count), x, *self.range)

    def transform(self, x, params):
        """Scale the saturation of each sample of `x` by its factor in `params`."""
        _batch(x, "RandSaturate", rgb=True)
        factor = jnp.reshape(params, (-1, 1, 1)).astype(x.dtype)
        return pix.adjust_saturation(x, factor, channel_axis=-3)

    def run(self, x):
        return self.transform(x, self.sample(x)) if self.is_training() else x


class RandHue(Craft):
    """Shift the HSV hue of each RGB sample by a fraction of the circle drawn uniformly in (-delta, delta).

    `delta` <= 0.5. As dm-pix / tf.image `adjust_hue`.
    """

    def __init__(self, delta: float, scope: str = "RANDHUE"):
        super().__init__(scope)
        self.range = _span(-delta, delta, "RandHue delta", -0.5, 0.5)
        self.key, self.count = new_stream()

    def sample(self, x):
        """Per-sample parameters for batch `x`: the hue shift per sample, shape (N,)."""
        return _uniform(draw(self.key, self.count), x, *self.range)

    def transform(self, x, params):
        """Shift the hue of each sample of `x` by its value in `params` (a fraction of the circle)."""
        _batch(x, "RandHue", rgb=True)
        return pix.adjust_hue(x, jnp.reshape(params, (-1, 1, 1)).astype(x.dtype), channel_axis=-3)

    def run(self, x):
        return self.transform(x, self.sample(x)) if self.is_training() else x
