"""Metrics on JAX: classification accuracy, PSNR and (Gaussian-window) SSIM; each returns a float32 scalar."""

from __future__ import annotations

import dm_pix
import jax.numpy as jnp

from nebulae.astro import labels
from nebulae.astro.args import check_images as _check_images
from nebulae.astro.tables import PSNR_EPS

from .craft import Craft
from .loss import bad_labels, nan_if

__all__ = ["AccCls", "PSNR", "SSIM"]


class AccCls(Craft):
    """Classification accuracy of scores x (N, C, ...) against labels y.

    Single-label: argmax over axis 1 against integer labels (N, ...), or one-hot labels shaped like x
    when `is_one_hot`. Multi-label (`multi_class`): x holds probabilities, rounded as they are (no
    sigmoid), and a sample counts only if all its labels (axis 1) match y (multi-hot, shaped like x).
    Integer labels equal to `ignore_index` are left out, as torchmetrics' ignore_index: the accuracy is over
    the other labels, NaN when every label is left out. Any other integer label outside [0, C) raises
    ValueError when value checks are on (`Law.CHECKS`), and makes the accuracy NaN when they are off.

    Args:
        multi_class: multi-label accuracy on probabilities x and multi-hot y.
        is_one_hot: y holds one-hot labels shaped like x.
        ignore_index: the integer label to leave out (default -100, torch's).
        scope: the craft's name.
    """

    def __init__(
        self,
        multi_class: bool = False,
        is_one_hot: bool = False,
        ignore_index: int = labels.IGNORE_INDEX,
        scope: str = "ACCCLS",
    ):
        super().__init__(scope)
        if multi_class and is_one_hot:
            raise ValueError("AccCls: multi-label targets are multi-hot, not one-hot; use is_one_hot=False")
        self.multi_class, self.is_one_hot = bool(multi_class), bool(is_one_hot)
        self.ignore_index = labels.ignore_index(ignore_index, "AccCls")

    def run(self, x, y):
        if self.multi_class or self.is_one_hot:
            if y.shape != x.shape:
                raise ValueError(f"AccCls: labels must have the scores' shape {tuple(x.shape)}, got {tuple(y.shape)}")
            if self.multi_class:
                hit = jnp.all(jnp.round(x.astype(jnp.float32)) == y.astype(jnp.float32), axis=1)
                return hit.astype(jnp.float32).mean()
            return (jnp.argmax(x, axis=1) == jnp.argmax(y, axis=1)).astype(jnp.float32).mean()
        if y.shape != x.shape[:1] + x.shape[2:]:
            raise ValueError(
                f"AccCls: integer labels must have shape {tuple(x.shape[:1] + x.shape[2:])} "
                f"for scores {tuple(x.shape)}, got {tuple(y.shape)}"
            )
        bad = bad_labels(y, x.shape[1], self.ignore_index, "AccCls")
        keep = y != self.ignore_index
        hits = ((jnp.argmax(x, axis=1) == y) & keep).sum().astype(jnp.float32)
        return nan_if(hits / keep.sum().astype(jnp.float32), bad)


class PSNR(Craft):
    """Peak signal-to-noise ratio 10 log10(peak^2 / (MSE + 1e-8)), computed per image and averaged over the batch.

    (The original computed one MSE over the whole batch; per-image PSNR is the usual reporting.)
    """

    def __init__(self, peak: float = 1.0, scope: str = "PSNR"):
        super().__init__(scope)
        self.peak = float(peak)

    def run(self, x, y):
        if x.shape != y.shape or x.ndim < 2:
            raise ValueError(
                f"PSNR: expected two batches of one shape (N, ...), got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        d = x.astype(jnp.float32) - y.astype(jnp.float32)
        mse = jnp.square(d).reshape(d.shape[0], -1).mean(1)
        return (10.0 * jnp.log10(self.peak**2 / (mse + PSNR_EPS))).mean()


class SSIM(Craft):
    """Structural similarity (Wang et al. 2004) of (N, C, H, W) images, per image then averaged over the batch.

    The standard form: a `size` x `size` Gaussian window of std `sigma` (valid filtering),
    C1 = (k1 peak)^2, C2 = (k2 peak)^2, channels averaged; the same numbers as dm-pix's `ssim`.
    """

    def __init__(
        self,
        peak: float = 1.0,
        size: int = 11,
        sigma: float = 1.5,
        k1: float = 0.01,
        k2: float = 0.03,
        scope: str = "SSIM",
    ):
        super().__init__(scope)
        if size < 1 or sigma <= 0:
            raise ValueError(f"SSIM: window size must be >= 1 and sigma > 0, got size {size}, sigma {sigma}")
        self.peak, self.size, self.sigma, self.k1, self.k2 = float(peak), int(size), float(sigma), float(k1), float(k2)

    def run(self, x, y):
        _check_images(x, y, "SSIM")
        h, w = x.shape[2:]
        if h < self.size or w < self.size:
            raise ValueError(f"SSIM: images ({h}x{w}) must be at least the window size {self.size}")
        per_image = dm_pix.ssim(
            jnp.moveaxis(x.astype(jnp.float32), 1, -1),
            jnp.moveaxis(y.astype(jnp.float32), 1, -1),
            max_val=self.peak,
            filter_size=self.size,
            filter_sigma=self.sigma,
            k1=self.k1,
            k2=self.k2,
        )
        return per_image.mean()
