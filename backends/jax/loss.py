"""Losses on JAX (mean-reduced, computed in float32). Class scores sit on axis 1, as in torch."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from nebulae.astro import labels
from nebulae.astro.args import check_same_shape as _same_shape

from .checks import check
from .craft import Craft

__all__ = ["MSE", "MAE", "Huber", "Charbon", "SigmXE", "SftmXE", "OHEM"]


def _f32(*arrays):
    return tuple(a.astype(jnp.float32) for a in arrays)


def bad_labels(y: jax.Array, nclass: int, ignore: int, craft: str) -> jax.Array:
    """The labels that break the class-label rule (see `nebulae.astro.labels.bad_labels`)."""
    return labels.bad_labels(y, nclass, ignore, craft, check, _first_index)


def _first_index(mask: jax.Array) -> jax.Array:
    return jnp.argmax(mask.reshape(-1))


def nan_if(value: jax.Array, bad: jax.Array) -> jax.Array:
    """`value`, or NaN (with a NaN gradient) when any entry of `bad` is set."""
    return value * jnp.where(bad.any(), jnp.nan, 1.0)


class MSE(Craft):
    """Mean squared error."""

    def __init__(self, scope: str = "MSE"):
        super().__init__(scope)

    def run(self, x, y):
        _same_shape(x, y, "MSE")
        x, y = _f32(x, y)
        return jnp.mean(jnp.square(x - y))


class MAE(Craft):
    """Mean absolute error."""

    def __init__(self, scope: str = "MAE"):
        super().__init__(scope)

    def run(self, x, y):
        _same_shape(x, y, "MAE")
        d = x.astype(jnp.float32) - y.astype(jnp.float32)
        return jnp.mean(d * jnp.sign(d))  # |d| with gradient sign(d): 0 at ties, as torch (jnp.abs has 1 there)


class Huber(Craft):
    """Huber loss: 0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta), with d = x - y (torch's huber_loss)."""

    def __init__(self, delta: float = 1.0, scope: str = "HUBER"):
        super().__init__(scope)
        if delta <= 0:
            raise ValueError(f"Huber: delta must be positive, got {delta}")
        self.delta = float(delta)

    def run(self, x, y):
        _same_shape(x, y, "Huber")
        x, y = _f32(x, y)
        d = jnp.abs(x - y)
        return jnp.mean(jnp.where(d < self.delta, 0.5 * d * d, self.delta * (d - 0.5 * self.delta)))


class Charbon(Craft):
    """Charbonnier loss: mean of sqrt((x - y)^2 + eps), a smooth L1."""

    def __init__(self, eps: float = 1e-6, scope: str = "CHARBON"):
        super().__init__(scope)
        if eps <= 0:
            raise ValueError(f"Charbon: eps must be positive, got {eps}")
        self.eps = float(eps)

    def run(self, x, y):
        _same_shape(x, y, "Charbon")
        x, y = _f32(x, y)
        return jnp.mean(jnp.sqrt(jnp.square(x - y) + self.eps))


class SigmXE(Craft):
    """Binary cross-entropy on logits x with targets y in [0, 1] (numerically stable form)."""

    def __init__(self, scope: str = "SIGMXE"):
        super().__init__(scope)

    def run(self, x, y):
        _same_shape(x, y, "SigmXE")
        x, y = _f32(x, y)
        return jnp.mean((1.0 - y) * x - jax.nn.log_sigmoid(x))


class SftmXE(Craft):
    """Softmax cross-entropy on logits (N, C, ...): integer labels (N, ...) or soft/one-hot labels shaped like x.

    Integer labels equal to `ignore_index` are left out (torch's rule): the loss is the mean over the other
    labels, NaN when every label is left out. Any other label outside [0, C) raises ValueError when value
    checks are on (`Law.CHECKS`), and makes the loss and its gradient NaN when they are off.

    Args:
        ignore_index: the integer label to leave out (default -100, torch's).
        scope: the craft's name.
    """

    def __init__(self, ignore_index: int = labels.IGNORE_INDEX, scope: str = "SFTMXE"):
        super().__init__(scope)
        self.ignore_index = labels.ignore_index(ignore_index, "SftmXE")

    def run(self, x, y):
        logp = jax.nn.log_softmax(x.astype(jnp.float32), axis=1)
        if jnp.issubdtype(y.dtype, jnp.floating):
            if y.shape != x.shape:
                raise ValueError(f"SftmXE: soft labels must have the logits' shape {x.shape}, got {y.shape}")
            return -jnp.mean(jnp.sum(y.astype(jnp.float32) * logp, axis=1))
        y = y.astype(jnp.int32)
        bad = bad_labels(y, x.shape[1], self.ignore_index, "SftmXE")
        keep = (y != self.ignore_index) & ~bad
        picked = jnp.take_along_axis(logp, jnp.expand_dims(jnp.where(keep, y, 0), 1), axis=1).squeeze(1)
        return nan_if(-jnp.sum(jnp.where(keep, picked, 0.0)) / jnp.sum(keep), bad)


class OHEM(Craft):
    """Online hard-example mining over dense maps: the mean of each row's hardest per-pixel losses.

    `loss_fn(x, y)` returns the unreduced per-pixel loss (B, C, *spatial), e.g. `lambda x, y: (x - y) ** 2`.
    Rows are (batch, channel) pairs when `chnl_wise`, else samples; P = pixels per row. In a row,
    pixels with loss < `thr` are easy ("positives"), the rest negatives; the k hardest pixels are
    averaged, k = max(ceil(he_ratio * P), min(floor(np_ratio * positives), negatives)), at most the
    valid pixels. `keep_pos` also averages in every positive (each pixel counted once). `m`, an
    optional mask broadcastable per row (e.g. (B, 1, *spatial)), marks valid pixels (> 0). The loss
    is the mean over rows that have valid pixels. k is data-dependent but selected from a static
    top-K (K bounds k from shapes and ratios), so both engines agree.
    """

    def __init__(
        self,
        loss_fn,
        he_ratio: float = 0.005,
        np_ratio: float = 3.0,
        thr: float = 0.01,
        chnl_wise: bool = True,
        keep_pos: bool = False,
        scope: str = "OHEM",
    ):
        super().__init__(scope)
        if not callable(loss_fn):
            raise TypeError(
                f"OHEM: loss_fn must be a callable returning per-pixel losses, got {type(loss_fn).__name__}"
            )
        if not 0.0 < he_ratio <= 1.0:
            raise ValueError(f"OHEM: he_ratio must be in (0, 1], got {he_ratio}")
        if np_ratio < 0:
            raise ValueError(f"OHEM: np_ratio must be non-negative, got {np_ratio}")
        self.loss_fn, self.he_ratio, self.np_ratio, self.thr = loss_fn, float(he_ratio), float(np_ratio), float(thr)
        self.chnl_wise, self.keep_pos = bool(chnl_wise), bool(keep_pos)

    def bounds(self, pixels: int) -> tuple[int, int]:
        """(k_he, K): the he_ratio floor of k and the static top-K that bounds k for rows of `pixels` pixels."""
        k_he = min(pixels, max(1, math.ceil(self.he_ratio * pixels - 1e-9)))
        k_np = math.floor(self.np_ratio * pixels / (self.np_ratio + 1.0)) + 1
        return k_he, min(pixels, max(k_he, k_np))

    def run(self, x, y, m=None):
        loss = self.loss_fn(x, y).astype(jnp.float32)
        if loss.ndim < (3 if self.chnl_wise else 2):
            raise ValueError(
                f"OHEM: loss_fn must return an unreduced per-pixel loss (B, C, *spatial), got shape {tuple(loss.shape)}"
            )
        rows = loss.reshape(loss.shape[0] * loss.shape[1] if self.chnl_wise else loss.shape[0], -1)
        if m is None:
            valid = jnp.ones(rows.shape, bool)
        else:
            if (
                m.ndim != loss.ndim
                or any(a not in (1, b) for a, b in zip(m.shape, loss.shape))
                or m.shape[0] != loss.shape[0]
            ):
                raise ValueError(
                    f"OHEM: mask {tuple(m.shape)} must broadcast to the loss {tuple(loss.shape)} per sample"
                )
            valid = jnp.broadcast_to(m > 0, loss.shape).reshape(rows.shape)
        k_he, top = self.bounds(rows.shape[1])
        positive = valid & (rows < self.thr)
        npos = positive.sum(1).astype(jnp.float32)
        nvalid = valid.sum(1).astype(jnp.float32)
        k = jnp.minimum(jnp.maximum(jnp.minimum(jnp.floor(npos * self.np_ratio), nvalid - npos), k_he), nvalid)
        hardest = jax.lax.top_k(jnp.where(valid, rows, -jnp.inf), top)[0]
        chosen = jnp.arange(top)[None, :] < k[:, None]
        if self.keep_pos:
            chosen = chosen & (hardest >= self.thr)
            total = jnp.where(chosen, hardest, 0.0).sum(1) + jnp.where(positive, rows, 0.0).sum(1)
            count = chosen.sum(1).astype(jnp.float32) + npos
        else:
            total = jnp.where(chosen, hardest, 0.0).sum(1)
            count = chosen.sum(1).astype(jnp.float32)
        used = count > 0
        per_row = jnp.where(used, total / jnp.maximum(count, 1.0), 0.0)
        return per_row.sum() / jnp.maximum(used.sum().astype(jnp.float32), 1.0)
