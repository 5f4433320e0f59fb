"""Batch augmentation inside the step: random flip, crop, brightness, contrast, saturation, hue.

Each craft augments an (N, C, H, W) float batch in [0, 1] per sample, in train mode only (identity
in eval). `run(x)` = `transform(x, sample(x))`: `sample` draws the per-sample parameters (torch: from
its global generator; JAX: from the craft's own stream, a key and a counter in its state advanced every
train-mode call, so a compiled step draws anew each step without retracing), `transform` is the
deterministic core, the same on both engines. The maths follows dm-pix / tf.image: contrast scales
around each channel's mean, saturation scales HSV saturation (clipped to [0, 1]), hue shifts HSV hue
by a fraction of the circle; brightness and contrast results are clipped to [0, 1].
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["RandFlip", "RandCrop", "RandBrighten", "RandContrast", "RandSaturate", "RandHue"]


class Kernels(Protocol):
    def augment_stream(self) -> tuple:
        """An augmenter's random stream (key, counter) seeded from the initialiser stream (torch draws from its own
        generator and keeps only the seed: (seed, None))."""

    def rand_flags(self, stream: tuple, x: Any, p: float) -> Any:
        """A boolean per sample of `x`, True with probability `p`: shape (N,)."""

    def rand_uniform(self, stream: tuple, x: Any, lo: float, hi: float) -> Any:
        """A float32 per sample of `x`, uniform in [lo, hi): shape (N,)."""

    def rand_offsets(self, stream: tuple, x: Any, rows: int, cols: int) -> Any:
        """(top, left) integer offsets per sample of `x`, top in [0, rows] and left in [0, cols]: shape (N, 2)."""

    def flip_lr(self, x: Any, flags: Any) -> Any:
        """The samples of the (N, C, H, W) `x` whose flag is set, mirrored left-right."""

    def crop_at(self, x: Any, offsets: Any, size: tuple[int, int], padding: int) -> Any:
        """A `size` (h, w) window of each zero-padded (by `padding`) sample of `x` at its (top, left) offset."""

    def brighten(self, x: Any, shift: Any) -> Any:
        """Each sample of `x` plus its value in `shift`, clipped to [0, 1]."""

    def contrast(self, x: Any, factor: Any) -> Any:
        """Each sample's distance to its per-channel spatial mean scaled by its `factor`, clipped to [0, 1]."""

    def saturate(self, x: Any, factor: Any) -> Any:
        """The HSV saturation of each RGB sample scaled by its `factor` (clipped to [0, 1]), as dm-pix."""

    def shift_hue(self, x: Any, shift: Any) -> Any:
        """The HSV hue of each RGB sample shifted by its `shift` (a fraction of the circle), as dm-pix."""


def check_batch(x, what: str, rgb: bool = False) -> None:
    """Raise ValueError unless `x` is an (N, C, H, W) batch ((N, 3, H, W) when `rgb`)."""
    if x.ndim != 4 or (rgb and x.shape[1] != 3):
        need = "(N, 3, H, W) RGB" if rgb else "(N, C, H, W)"
        raise ValueError(f"{what} needs an {need} batch, got shape {tuple(x.shape)}")


def check_span(lo: float, hi: float, what: str, low: float | None = None, high: float | None = None):
    """Check lo <= hi within [low, high] (either bound optional); (float lo, float hi)."""
    if lo > hi or (low is not None and lo < low) or (high is not None and hi > high):
        raise ValueError(f"{what}: need {low} <= lo <= hi <= {high}, got ({lo}, {hi})")
    return float(lo), float(hi)


def check_probability(p: float, what: str) -> float:
    """Check 0 <= p <= 1; float p."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{what} p must be in [0, 1], got {p}")
    return float(p)


def crop_size(size, padding: int, what: str) -> tuple[tuple[int, int], int]:
    """Normalise a crop `size` (an int or (h, w)) and its zero `padding`; ((h, w), padding)."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if len(size) != 2 or min(size) <= 0 or padding < 0:
        raise ValueError(f"{what} needs a positive size (int or (h, w)) and padding >= 0, got {size}, {padding}")
    return (int(size[0]), int(size[1])), int(padding)


def crop_room(x, size: tuple[int, int], padding: int, what: str) -> tuple[int, int]:
    """How far (rows, cols) a `size` crop can move inside the zero-padded (N, C, H, W) batch `x`."""
    check_batch(x, what)
    rows, cols = x.shape[2] + 2 * padding - size[0], x.shape[3] + 2 * padding - size[1]
    if rows < 0 or cols < 0:
        raise ValueError(f"{what}: a {size} crop does not fit a padded batch of shape {tuple(x.shape)}")
    return rows, cols


class _Augment:
    """An augmenter: `sample(x)` draws per-sample parameters, `transform(x, params)` applies them."""

    def _new_stream(self) -> None:
        self.key, self.count = self.ops.augment_stream()  # drawn last: both engines' init streams stay aligned

    def _uniform(self, x):
        return self.ops.rand_uniform((self.key, self.count), x, *self.range)

    def run(self, x):
        return self.transform(x, self.sample(x)) if self.is_training() else x


class RandFlip(_Augment):
    """Mirror each image of the batch left-right with probability `p` (train mode only).

    `sample(x)` gives a boolean flag per sample; `transform(x, flags)` flips the flagged ones.

    Args:
        p: the probability of flipping each image, in [0, 1].
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, p: float = 0.5, scope: str = "RANDFLIP"):
        super().__init__(scope)
        self.p = check_probability(p, "RandFlip")
        self._new_stream()

    def sample(self, x):
        """Per-sample parameters for batch `x`: a boolean flip flag per sample, shape (N,)."""
        return self.ops.rand_flags((self.key, self.count), x, self.p)

    def transform(self, x, params):
        """Flip the samples of `x` whose flag in `params` is set."""
        check_batch(x, "RandFlip")
        return self.ops.flip_lr(x, params)


class RandCrop(_Augment):
    """Crop each image to `size` (an int or (height, width)) at a random position, after zero `padding` on every side.

    CIFAR-style: `RandCrop(32, padding=4)` keeps 32x32 images at 32x32, shifted by up to 4 pixels.
    `sample(x)` gives (top, left) offsets into the padded images, shape (N, 2).

    Args:
        size: the crop's size, an int (square) or (height, width).
        padding: zero padding added on every side before cropping (>= 0).
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, size: int | tuple[int, int], padding: int = 0, scope: str = "RANDCROP"):
        super().__init__(scope)
        self.size, self.padding = crop_size(size, padding, "RandCrop")
        self._new_stream()

    def sample(self, x):
        """Per-sample parameters for batch `x`: (top, left) offsets into the padded images, shape (N, 2)."""
        rows, cols = crop_room(x, self.size, self.padding, "RandCrop")
        return self.ops.rand_offsets((self.key, self.count), x, rows, cols)

    def transform(self, x, params):
        """Crop `size` from each zero-padded sample of `x` at its (top, left) offset in `params`."""
        crop_room(x, self.size, self.padding, "RandCrop")
        return self.ops.crop_at(x, params, self.size, self.padding)


class RandBrighten(_Augment):
    """Add a per-sample brightness shift drawn uniformly in (-delta, delta), then clip to [0, 1] (train mode only).

    Args:
        delta: the largest shift, in [0, 1].
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, delta: float, scope: str = "RANDBRIGHTEN"):
        super().__init__(scope)
        self.range = check_span(-delta, delta, "RandBrighten delta", -1.0, 1.0)
        self.delta = self.range[1]
        self._new_stream()

    def sample(self, x):
        """Per-sample parameters for batch `x`: the additive shift per sample, shape (N,)."""
        return self._uniform(x)

    def transform(self, x, params):
        """Shift each sample of `x` by its value in `params`, clipped to [0, 1]."""
        check_batch(x, "RandBrighten")
        return self.ops.brighten(x, params)


class RandContrast(_Augment):
    """Scale each channel's distance to its spatial mean by a per-sample factor in [lo, hi], clipped to [0, 1].

    As dm-pix / tf.image `adjust_contrast` (per-channel mean, unlike fuel.Contrast's luma mean).

    Args:
        lo: the smallest factor (>= 0).
        hi: the largest factor (>= lo).
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, lo: float, hi: float, scope: str = "RANDCONTRAST"):
        super().__init__(scope)
        self.range = self.lo, self.hi = check_span(lo, hi, "RandContrast (lo, hi)", 0.0)
        self._new_stream()

    def sample(self, x):
        """Per-sample parameters for batch `x`: the contrast factor per sample, shape (N,)."""
        return self._uniform(x)

    def transform(self, x, params):
        """Scale each sample of `x` around its channel means by its factor in `params`, clipped to [0, 1]."""
        check_batch(x, "RandContrast")
        return self.ops.contrast(x, params)


class RandSaturate(_Augment):
    """Multiply the HSV saturation of each RGB sample by a factor in [lo, hi] (clipped to [0, 1]).

    As dm-pix / tf.image `adjust_saturation`.

    Args:
        lo: the smallest factor (>= 0).
        hi: the largest factor (>= lo).
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, lo: float, hi: float, scope: str = "RANDSATURATE"):
        super().__init__(scope)
        self.range = self.lo, self.hi = check_span(lo, hi, "RandSaturate (lo, hi)", 0.0)
        self._new_stream()

    def sample(self, x):
        """Per-sample parameters for batch `x`: the saturation factor per sample, shape (N,)."""
        return self._uniform(x)

    def transform(self, x, params):
        """Scale the saturation of each sample of `x` by its factor in `params`."""
        check_batch(x, "RandSaturate", rgb=True)
        return self.ops.saturate(x, params)


class RandHue(_Augment):
    """Shift the HSV hue of each RGB sample by a fraction of the circle drawn uniformly in (-delta, delta).

    As dm-pix / tf.image `adjust_hue`.

    Args:
        delta: the largest shift, a fraction of the circle in [0, 0.5].
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, delta: float, scope: str = "RANDHUE"):
        super().__init__(scope)
        self.range = check_span(-delta, delta, "RandHue delta", -0.5, 0.5)
        self.delta = self.range[1]
        self._new_stream()

    def sample(self, x):
        """Per-sample parameters for batch `x`: the hue shift per sample, shape (N,)."""
        return self._uniform(x)

    def transform(self, x, params):
        """Shift the hue of each sample of `x` by its value in `params` (a fraction of the circle)."""
        check_batch(x, "RandHue", rgb=True)
        return self.ops.shift_hue(x, params)
