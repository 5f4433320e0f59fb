"""Metrics: classification accuracy, PSNR and (Gaussian-window) SSIM; each returns a float32 scalar."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from nebulae.astro import labels

__all__ = ["AccCls", "PSNR", "SSIM"]

PSNR_EPS = 1e-8  # added to the MSE, so identical images give a finite PSNR


class Kernels(Protocol):
    def accuracy(self, x: Any, y: Any, ignore_index: int) -> Any:
        """The float32 fraction of integer labels y (N, ...) other than `ignore_index` that equal argmax(x, 1)
        (NaN when every label is left out)."""

    def one_hot_accuracy(self, x: Any, y: Any) -> Any:
        """The float32 fraction of positions where argmax(x, 1) equals argmax(y, 1)."""

    def multi_label_accuracy(self, p: Any, y: Any) -> Any:
        """The float32 fraction of samples whose rounded probabilities p equal y along all of axis 1."""

    def psnr(self, x: Any, y: Any, peak: float, eps: float) -> Any:
        """10 log10(peak^2 / (MSE + eps)) per sample (N, ...) in float32, averaged over the batch."""

    def ssim(self, x: Any, y: Any, window: Any, sigma: float, peak: float, k1: float, k2: float) -> Any:
        """SSIM of (N, C, H, W) images in float32 with the separable normalised 1-D Gaussian `window` (its
        size taps of std `sigma`, valid filtering), C1 = (k1 peak)^2, C2 = (k2 peak)^2, averaged over the
        pixels and channels of each image, then over the batch (dm-pix's `ssim`)."""


def check_images(x, y, what: str) -> None:
    """Raise ValueError unless `x` and `y` are (N, C, H, W) images of one shape."""
    if x.ndim != 4 or x.shape != y.shape:
        raise ValueError(
            f"{what}: expected two (N, C, H, W) images of one shape, got {tuple(x.shape)} and {tuple(y.shape)}"
        )


def gaussian_window(size: int, sigma: float) -> np.ndarray:
    """The normalised 1-D Gaussian window of SSIM (dm-pix / tf.image.ssim's definition)."""
    half = size // 2
    shift = (2 * half - size + 1) / 2
    w = np.exp(-0.5 * ((np.arange(size) - half + shift) / sigma) ** 2)
    return (w / w.sum()).astype(np.float32)


class AccCls:
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
        scope: the name of this craft in checkpoints and summaries.
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
                return self.ops.multi_label_accuracy(x, y)
            return self.ops.one_hot_accuracy(x, y)
        if y.shape != x.shape[:1] + x.shape[2:]:
            raise ValueError(
                f"AccCls: integer labels must have shape {tuple(x.shape[:1] + x.shape[2:])} "
                f"for scores {tuple(x.shape)}, got {tuple(y.shape)}"
            )
        ops = self.ops
        bad = labels.bad_labels(y, x.shape[1], self.ignore_index, "AccCls", ops.value_check, ops.first_true)
        return ops.nan_where(ops.accuracy(x, y, self.ignore_index), bad.any())


class PSNR:
    """Peak signal-to-noise ratio 10 log10(peak^2 / (MSE + 1e-8)), computed per image and averaged over the batch.

    (The original computed one MSE over the whole batch; per-image PSNR is the usual reporting.)

    Args:
        peak: the largest possible pixel value (1.0 for [0, 1] images, 255.0 for bytes).
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, peak: float = 1.0, scope: str = "PSNR"):
        super().__init__(scope)
        self.peak = float(peak)

    def run(self, x, y):
        if x.shape != y.shape or x.ndim < 2:
            raise ValueError(
                f"PSNR: expected two batches of one shape (N, ...), got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        return self.ops.psnr(x, y, self.peak, PSNR_EPS)


class SSIM:
    """Structural similarity (Wang et al. 2004) of (N, C, H, W) images, per image then averaged over the batch.

    The standard form: a `size` x `size` Gaussian window of std `sigma` (valid filtering),
    C1 = (k1 peak)^2, C2 = (k2 peak)^2, channels averaged; the same numbers as dm-pix's `ssim`.

    Args:
        peak: the largest possible pixel value (1.0 for [0, 1] images, 255.0 for bytes).
        size: the window's width in pixels (at most the image's height and width).
        sigma: the window's standard deviation in pixels.
        k1: the luminance constant's factor.
        k2: the contrast constant's factor.
        scope: the name of this craft in checkpoints and summaries.
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
        self.fixed("window", gaussian_window(self.size, self.sigma))

    def run(self, x, y):
        check_images(x, y, "SSIM")
        h, w = x.shape[2:]
        if h < self.size or w < self.size:
            raise ValueError(f"SSIM: images ({h}x{w}) must be at least the window size {self.size}")
        return self.ops.ssim(x, y, self.window, self.sigma, self.peak, self.k1, self.k2)
