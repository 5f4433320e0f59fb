"""Losses on torch (mean-reduced, computed in float32). Class scores sit on axis 1, as in torch."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from nebulae.astro import labels
from nebulae.astro.args import check_same_shape as _same_shape

from .checks import check
from .craft import Craft

__all__ = ["MSE", "MAE", "Huber", "Charbon", "SigmXE", "SftmXE", "OHEM"]


def bad_labels(y: torch.Tensor, nclass: int, ignore: int, craft: str) -> torch.Tensor:
    """The labels that break the class-label rule (see `nebulae.astro.labels.bad_labels`)."""
    return labels.bad_labels(y, nclass, ignore, craft, check, _first_index)


def _first_index(mask: torch.Tensor) -> torch.Tensor:
    return mask.reshape(-1).int().argmax()


def nan_if(value: torch.Tensor, bad: torch.Tensor) -> torch.Tensor:
    """`value`, or NaN (with a NaN gradient) when any entry of `bad` is set."""
    return value * torch.where(bad.any(), math.nan, 1.0)


class MSE(Craft):
    """Mean squared error."""

    def __init__(self, scope: str = "MSE"):
        super().__init__(scope)

    def run(self, x, y):
        _same_shape(x, y, "MSE")
        return F.mse_loss(x.float(), y.float())


class MAE(Craft):
    """Mean absolute error."""

    def __init__(self, scope: str = "MAE"):
        super().__init__(scope)

    def run(self, x, y):
        _same_shape(x, y, "MAE")
        return F.l1_loss(x.float(), y.float())


class Huber(Craft):
    """Huber loss: 0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta), with d = x - y (torch's huber_loss)."""

    def __init__(self, delta: float = 1.0, scope: str = "HUBER"):
        super().__init__(scope)
        if delta <= 0:
            raise ValueError(f"Huber: delta must be positive, got {delta}")
        self.delta = float(delta)

    def run(self, x, y):
        _same_shape(x, y, "Huber")
        return F.huber_loss(x.float(), y.float(), delta=self.delta)


class Charbon(Craft):
    """Charbonnier loss: mean of sqrt((x - y)^2 + eps), a smooth L1."""

    def __init__(self, eps: float = 1e-6, scope: str = "CHARBON"):
        super().__init__(scope)
        if eps <= 0:
            raise ValueError(f"Charbon: eps must be positive, got {eps}")
        self.eps = float(eps)

    def run(self, x, y):
        _same_shape(x, y, "Charbon")
        return torch.sqrt(torch.square(x.float() - y.float()) + self.eps).mean()


class SigmXE(Craft):
    """Binary cross-entropy on logits x with targets y in [0, 1] (numerically stable form)."""

    def __init__(self, scope: str = "SIGMXE"):
        super().__init__(scope)

    def run(self, x, y):
        _same_shape(x, y, "SigmXE")
        return F.binary_cross_entropy_with_logits(x.float(), y.float())


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
        x = x.float()
        if y.is_floating_point():
            if y.shape != x.shape:
                raise ValueError(
                    f"SftmXE: soft labels must have the logits' shape {tuple(x.shape)}, got {tuple(y.shape)}"
                )
            return F.cross_entropy(x, y.float())
        y, ignore = y.long(), self.ignore_index
        bad = bad_labels(y, x.shape[1], ignore, "SftmXE")
        return nan_if(F.cross_entropy(x, torch.where(bad, ignore, y), ignore_index=ignore), bad)


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
        loss = self.loss_fn(x, y).float()
        if loss.ndim < (3 if self.chnl_wise else 2):
            raise ValueError(
                f"OHEM: loss_fn must return an unreduced per-pixel loss (B, C, *spatial), got shape {tuple(loss.shape)}"
            )
        rows = loss.reshape(loss.shape[0] * loss.shape[1] if self.chnl_wise else loss.shape[0], -1)
        if m is None:
            valid = torch.ones_like(rows, dtype=torch.bool)
        else:
            if (
                m.ndim != loss.ndim
                or any(a not in (1, b) for a, b in zip(m.shape, loss.shape))
                or m.shape[0] != loss.shape[0]
            ):
                raise ValueError(
                    f"OHEM: mask {tuple(m.shape)} must broadcast to the loss {tuple(loss.shape)} per sample"
                )
            valid = (m > 0).expand(loss.shape).reshape(rows.shape)
        k_he, top = self.bounds(rows.shape[1])
        positive = valid & (rows < self.thr)
        npos = positive.sum(1).float()
        nvalid = valid.sum(1).float()
        k = torch.minimum(
            torch.clamp(torch.minimum(torch.floor(npos * self.np_ratio), nvalid - npos), min=k_he), nvalid
        )
        hardest = torch.topk(rows.masked_fill(~valid, -math.inf), top, dim=1).values
        chosen = torch.arange(top, device=rows.device)[None, :] < k[:, None]
        if self.keep_pos:
            chosen = chosen & (hardest >= self.thr)
            total = torch.where(chosen, hardest, 0.0).sum(1) + torch.where(positive, rows, 0.0).sum(1)
            count = chosen.sum(1).float() + npos
        else:
            total = torch.where(chosen, hardest, 0.0).sum(1)
            count = chosen.sum(1).float()
        used = count > 0
        per_row = torch.where(used, total / torch.clamp(count, min=1.0), 0.0)
        return per_row.sum() / torch.clamp(used.sum().float(), min=1.0)
