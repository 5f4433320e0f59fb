"""Losses: MSE, MAE, Huber, Charbon, SigmXE, BCE, SftmXE, NLL and OHEM, computed in float32 as torch.nn computes them.

Class scores sit on axis 1, as in torch. Every loss but OHEM takes `reduction`: 'mean' (the default),
'sum' or 'none' (the per-element losses: x's shape, or the labels' shape for SftmXE/NLL), as torch's
`reduction`. Integer class labels follow one rule (`nebulae.astro.labels`): `ignore_index` is left out,
any other label outside [0, C) is an error with value checks on and NaN with them off.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from nebulae.astro import labels

__all__ = ["MSE", "MAE", "Huber", "Charbon", "SigmXE", "BCE", "SftmXE", "NLL", "OHEM"]

REDUCTIONS = ("mean", "sum", "none")


class Kernels(Protocol):
    def value_check(self, ok: Any, message: str, **values: Any) -> None:
        """Where `ok` is False and value checks are on, raise ValueError(message with `values`) (JAX: checkify
        inside a compiled step)."""

    def first_true(self, mask: Any) -> Any:
        """The flat index of the first True entry of `mask` (0 when none)."""

    def nan_where(self, value: Any, bad: Any) -> Any:
        """`value`, NaN (with a NaN gradient) where `bad` is set (`bad` broadcasts against `value`)."""

    def class_labels(self, y: Any, bad: Any, ignore_index: int) -> Any:
        """Integer labels `y` as the engine's index dtype, `ignore_index` where `bad` is set."""

    def mse(self, x: Any, y: Any, reduction: str) -> Any:
        """(x - y)^2 in float32, reduced."""

    def l1(self, x: Any, y: Any, reduction: str) -> Any:
        """|x - y| in float32 with gradient sign(x - y) (0 at ties, as torch), reduced."""

    def huber(self, x: Any, y: Any, delta: float, reduction: str) -> Any:
        """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta), d = x - y in float32 (torch's huber_loss),
        reduced."""

    def charbonnier(self, x: Any, y: Any, eps: float, reduction: str) -> Any:
        """sqrt((x - y)^2 + eps) in float32, reduced."""

    def bce_with_logits(self, x: Any, y: Any, reduction: str) -> Any:
        """Binary cross-entropy of logits x against targets y in float32, in the stable form, reduced."""

    def bce(self, p: Any, y: Any, weight: Any, reduction: str) -> Any:
        """-(y log p + (1 - y) log(1 - p)) * weight (None: 1) in float32, logs clamped at -100 and the gradient
        (p - y) / max(p (1 - p), 1e-12) as torch's binary_cross_entropy, reduced."""

    def cross_entropy(self, x: Any, y: Any, ignore_index: int, reduction: str) -> Any:
        """Softmax cross-entropy of logits x (N, C, ...) in float32 against valid integer labels y (N, ...);
        labels equal to `ignore_index` are left out (loss 0 there; 'mean' averages the others), reduced."""

    def soft_cross_entropy(self, x: Any, y: Any, reduction: str) -> Any:
        """Softmax cross-entropy of logits x (N, C, ...) in float32 against probabilities y shaped like x,
        per position (N, ...), reduced."""

    def nll(self, logp: Any, y: Any, ignore_index: int, reduction: str) -> Any:
        """-logp[n, y[n], ...] in float32 for log-probabilities (N, C, ...) and valid integer labels y (N, ...),
        `ignore_index` left out as in `cross_entropy`, reduced."""

    def ohem(
        self, rows: Any, valid: Any, shape: tuple, k_he: int, top: int, np_ratio: float, thr: float, keep_pos: bool
    ) -> Any:
        """OHEM's loss over per-pixel losses `rows` (R, P), the loss of `shape` reshaped, in float32; `valid`
        (None: all) is a boolean mask that broadcasts to `shape`. Per row, the mean of the k hardest valid
        pixels (k as the OHEM craft defines it, at least `k_he`, chosen among a static top `top`), plus every
        positive (loss < thr) when `keep_pos`; the mean over the rows with valid pixels."""


def check_reduction(reduction, craft: str) -> str:
    """Check a loss's `reduction` argument; the value."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"{craft}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def check_same_shape(x, y, what: str) -> None:
    """Raise ValueError unless prediction `x` and target `y` have the same shape."""
    if x.shape != y.shape:
        raise ValueError(f"{what}: prediction {tuple(x.shape)} and target {tuple(y.shape)} must have the same shape")


def check_class_labels(ops, x, y, ignore_index: int, name: str):
    """Check integer labels `y` (N, ...) for scores `x` (N, C, ...) of craft `name` against the class-label
    rule; the mask of the bad ones (see `nebulae.astro.labels`)."""
    if ops.is_floating(y):
        raise TypeError(f"{name}: labels must be integer class ids, got dtype {ops.dtype_name(y)}")
    want = tuple(x.shape[:1]) + tuple(x.shape[2:])
    if x.ndim < 2 or tuple(y.shape) != want:
        raise ValueError(
            f"{name}: integer labels must have shape {want} for scores {tuple(x.shape)} (N, C, ...), "
            f"got {tuple(y.shape)}"
        )
    return labels.bad_labels(y, x.shape[1], ignore_index, name, ops.value_check, ops.first_true)


def _broadcasts(shape: tuple, to: tuple) -> bool:
    """Whether an array of `shape` broadcasts to `to`."""
    return len(shape) <= len(to) and all(a in (1, b) for a, b in zip(shape[::-1], to[::-1]))


class _Pointwise:
    """A loss between a prediction and a target of one shape: `run(x, y)` is the `kernel` of the two."""

    kernel = ""

    def run(self, x, y):
        check_same_shape(x, y, type(self).__name__)
        return getattr(self.ops, self.kernel)(x, y, self.reduction)


class MSE(_Pointwise):
    """Mean squared error, as torch.nn.MSELoss.

    Args:
        reduction: 'mean' (default), 'sum' or 'none' (the per-element losses, x's shape).
        scope: the name of this craft in checkpoints and summaries.
    """

    kernel = "mse"

    def __init__(self, reduction: str = "mean", scope: str = "MSE"):
        super().__init__(scope)
        self.reduction = check_reduction(reduction, "MSE")


class MAE(_Pointwise):
    """Mean absolute error, as torch.nn.L1Loss; the gradient at ties (x == y) is 0 on both engines.

    Args:
        reduction: 'mean' (default), 'sum' or 'none' (the per-element losses, x's shape).
        scope: the name of this craft in checkpoints and summaries.
    """

    kernel = "l1"

    def __init__(self, reduction: str = "mean", scope: str = "MAE"):
        super().__init__(scope)
        self.reduction = check_reduction(reduction, "MAE")


class Huber:
    """Huber loss: 0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta), with d = x - y (torch.nn.HuberLoss).

    Args:
        delta: where the quadratic part turns linear (positive).
        reduction: 'mean' (default), 'sum' or 'none' (the per-element losses, x's shape).
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, delta: float = 1.0, reduction: str = "mean", scope: str = "HUBER"):
        super().__init__(scope)
        if delta <= 0:
            raise ValueError(f"Huber: delta must be positive, got {delta}")
        self.delta = float(delta)
        self.reduction = check_reduction(reduction, "Huber")

    def run(self, x, y):
        check_same_shape(x, y, "Huber")
        return self.ops.huber(x, y, self.delta, self.reduction)


class Charbon:
    """Charbonnier loss: sqrt((x - y)^2 + eps), a smooth L1, averaged by default.

    Args:
        eps: the smoothing term (positive).
        reduction: 'mean' (default), 'sum' or 'none' (the per-element losses, x's shape).
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, eps: float = 1e-6, reduction: str = "mean", scope: str = "CHARBON"):
        super().__init__(scope)
        if eps <= 0:
            raise ValueError(f"Charbon: eps must be positive, got {eps}")
        self.eps = float(eps)
        self.reduction = check_reduction(reduction, "Charbon")

    def run(self, x, y):
        check_same_shape(x, y, "Charbon")
        return self.ops.charbonnier(x, y, self.eps, self.reduction)


class SigmXE(_Pointwise):
    """Binary cross-entropy on logits x with targets y in [0, 1] (numerically stable form), as
    torch.nn.BCEWithLogitsLoss.

    Args:
        reduction: 'mean' (default), 'sum' or 'none' (the per-element losses, x's shape).
        scope: the name of this craft in checkpoints and summaries.
    """

    kernel = "bce_with_logits"

    def __init__(self, reduction: str = "mean", scope: str = "SIGMXE"):
        super().__init__(scope)
        self.reduction = check_reduction(reduction, "SigmXE")


class BCE:
    """Binary cross-entropy on probabilities p in [0, 1] with targets y in [0, 1], as torch.nn.BCELoss:
    -(y log p + (1 - y) log(1 - p)), each log clamped at -100 (so p = 0 or 1 gives a finite loss and
    gradient, as torch's). For logits use SigmXE, which is more stable.

    Args:
        weight: an optional array of per-element weights, broadcast against p (torch's `weight`).
        reduction: 'mean' (default), 'sum' or 'none' (the per-element losses, p's shape).
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, weight=None, reduction: str = "mean", scope: str = "BCE"):
        super().__init__(scope)
        self.reduction = check_reduction(reduction, "BCE")
        if weight is None:
            self.weight, self._weight_shape = None, None
        else:
            weight = np.asarray(weight, np.float32)
            self.fixed("weight", weight)
            self._weight_shape = weight.shape

    def run(self, p, y):
        check_same_shape(p, y, "BCE")
        if self._weight_shape is not None and not _broadcasts(self._weight_shape, tuple(p.shape)):
            raise ValueError(f"BCE: weight {self._weight_shape} must broadcast to the input {tuple(p.shape)}")
        return self.ops.bce(p, y, self.weight, self.reduction)


class SftmXE:
    """Softmax cross-entropy on logits (N, C, ...): integer labels (N, ...) or soft/one-hot labels shaped like x,
    as torch.nn.CrossEntropyLoss.

    Integer labels equal to `ignore_index` are left out (torch's rule): the loss is the mean over the other
    labels, NaN when every label is left out ('none': 0 at those positions). Any other label outside
    [0, C) raises ValueError when value checks are on (`Law.CHECKS`), and makes the loss and its gradient
    NaN when they are off ('none': NaN at that position).

    Args:
        ignore_index: the integer label to leave out (default -100, torch's).
        reduction: 'mean' (default), 'sum' or 'none' (the per-position losses, shaped (N, ...)).
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, ignore_index: int = labels.IGNORE_INDEX, reduction: str = "mean", scope: str = "SFTMXE"):
        super().__init__(scope)
        self.ignore_index = labels.ignore_index(ignore_index, "SftmXE")
        self.reduction = check_reduction(reduction, "SftmXE")

    def run(self, x, y):
        if self.ops.is_floating(y):
            if y.shape != x.shape:
                raise ValueError(
                    f"SftmXE: soft labels must have the logits' shape {tuple(x.shape)}, got {tuple(y.shape)}"
                )
            return self.ops.soft_cross_entropy(x, y, self.reduction)
        bad = check_class_labels(self.ops, x, y, self.ignore_index, "SftmXE")
        y = self.ops.class_labels(y, bad, self.ignore_index)
        loss = self.ops.cross_entropy(x, y, self.ignore_index, self.reduction)
        return self.ops.nan_where(loss, bad if self.reduction == "none" else bad.any())


class NLL:
    """Negative log-likelihood of log-probabilities (N, C, ...) (e.g. LogSoftmax(1)'s output) against
    integer labels (N, ...), as torch.nn.NLLLoss: -logp[n, y[n]]; NLL(LogSoftmax(1)(x)) is SftmXE on x.

    Labels follow SftmXE's rule: `ignore_index` is left out (the mean is over the other labels, NaN when
    all are left out), any other label outside [0, C) raises ValueError with value checks on and makes
    the loss and its gradient NaN with them off.

    Args:
        ignore_index: the integer label to leave out (default -100, torch's).
        reduction: 'mean' (default), 'sum' or 'none' (the per-position losses, shaped (N, ...)).
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, ignore_index: int = labels.IGNORE_INDEX, reduction: str = "mean", scope: str = "NLL"):
        super().__init__(scope)
        self.ignore_index = labels.ignore_index(ignore_index, "NLL")
        self.reduction = check_reduction(reduction, "NLL")

    def run(self, logp, y):
        bad = check_class_labels(self.ops, logp, y, self.ignore_index, "NLL")
        y = self.ops.class_labels(y, bad, self.ignore_index)
        loss = self.ops.nll(logp, y, self.ignore_index, self.reduction)
        return self.ops.nan_where(loss, bad if self.reduction == "none" else bad.any())


class OHEM:
    """Online hard-example mining over dense maps: the mean of each row's hardest per-pixel losses.

    `loss_fn(x, y)` returns the unreduced per-pixel loss (B, C, *spatial), e.g. `lambda x, y: (x - y) ** 2`.
    Rows are (batch, channel) pairs when `chnl_wise`, else samples; P = pixels per row. In a row,
    pixels with loss < `thr` are easy ("positives"), the rest negatives; the k hardest pixels are
    averaged, k = max(ceil(he_ratio * P), min(floor(np_ratio * positives), negatives)), at most the
    valid pixels. `keep_pos` also averages in every positive (each pixel counted once). `m`, an
    optional mask broadcastable per row (e.g. (B, 1, *spatial)), marks valid pixels (> 0). The loss
    is the mean over rows that have valid pixels. k is data-dependent but selected from a static
    top-K (K bounds k from shapes and ratios), so both engines agree.

    Args:
        loss_fn: a callable (x, y) -> unreduced per-pixel loss (B, C, *spatial).
        he_ratio: the least fraction of a row's pixels mined, in (0, 1].
        np_ratio: negatives mined per positive (non-negative).
        thr: the loss below which a pixel is easy (a positive).
        chnl_wise: rows are (batch, channel) pairs (else samples).
        keep_pos: also average in every positive.
        scope: the name of this craft in checkpoints and summaries.
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
        loss = self.loss_fn(x, y)
        if loss.ndim < (3 if self.chnl_wise else 2):
            raise ValueError(
                f"OHEM: loss_fn must return an unreduced per-pixel loss (B, C, *spatial), got shape {tuple(loss.shape)}"
            )
        nrows = loss.shape[0] * loss.shape[1] if self.chnl_wise else loss.shape[0]
        if m is None:
            valid = None
        else:
            if (
                m.ndim != loss.ndim
                or any(a not in (1, b) for a, b in zip(m.shape, loss.shape))
                or m.shape[0] != loss.shape[0]
            ):
                raise ValueError(
                    f"OHEM: mask {tuple(m.shape)} must broadcast to the loss {tuple(loss.shape)} per sample"
                )
            valid = m > 0
        rows = loss.reshape(nrows, -1)
        k_he, top = self.bounds(rows.shape[1])
        return self.ops.ohem(rows, valid, loss.shape, k_he, top, self.np_ratio, self.thr, self.keep_pos)
