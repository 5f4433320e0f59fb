"""Loss kernels on torch: torch.nn.functional's losses in float32, called directly."""

import math

import torch
import torch.nn.functional as F

from ..checks import check as value_check  # noqa: F401 (a kernel: the value checks of Law.CHECKS)


def first_true(mask):
    return mask.reshape(-1).int().argmax()


def nan_where(value, bad):
    return value * torch.where(bad, math.nan, 1.0)


def class_labels(y, bad, ignore_index):
    return torch.where(bad, ignore_index, y.long())


def mse(x, y, reduction):
    return F.mse_loss(x.float(), y.float(), reduction=reduction)


def l1(x, y, reduction):
    return F.l1_loss(x.float(), y.float(), reduction=reduction)


def huber(x, y, delta, reduction):
    return F.huber_loss(x.float(), y.float(), reduction=reduction, delta=delta)


def charbonnier(x, y, eps, reduction):
    loss = torch.sqrt(torch.square(x.float() - y.float()) + eps)
    if reduction == "none":
        return loss
    return loss.mean() if reduction == "mean" else loss.sum()


def bce_with_logits(x, y, reduction):
    return F.binary_cross_entropy_with_logits(x.float(), y.float(), reduction=reduction)


def bce(p, y, weight, reduction):
    if torch.is_autocast_enabled(p.device.type):  # CUDA autocast refuses binary_cross_entropy
        with torch.autocast(p.device.type, enabled=False):
            return F.binary_cross_entropy(p.float(), y.float(), weight, reduction=reduction)
    return F.binary_cross_entropy(p.float(), y.float(), weight, reduction=reduction)


def cross_entropy(x, y, ignore_index, reduction):
    return F.cross_entropy(x.float(), y, ignore_index=ignore_index, reduction=reduction)


def soft_cross_entropy(x, y, reduction):
    return F.cross_entropy(x.float(), y.float(), reduction=reduction)


def nll(logp, y, ignore_index, reduction):
    return F.nll_loss(logp.float(), y, ignore_index=ignore_index, reduction=reduction)


def ohem(rows, valid, shape, k_he, top, np_ratio, thr, keep_pos):
    rows = rows.float()
    valid = torch.ones_like(rows, dtype=torch.bool) if valid is None else valid.expand(shape).reshape(rows.shape)
    positive = valid & (rows < thr)
    npos, nvalid = positive.sum(1).float(), valid.sum(1).float()
    k = torch.minimum(torch.clamp(torch.minimum(torch.floor(npos * np_ratio), nvalid - npos), min=k_he), nvalid)
    hardest = torch.topk(rows.masked_fill(~valid, -math.inf), top, dim=1).values
    chosen = torch.arange(top, device=rows.device)[None, :] < k[:, None]
    if keep_pos:
        chosen &= hardest >= thr
        total = torch.where(chosen, hardest, 0.0).sum(1) + torch.where(positive, rows, 0.0).sum(1)
        count = chosen.sum(1).float() + npos
    else:
        total = torch.where(chosen, hardest, 0.0).sum(1)
        count = chosen.sum(1).float()
    used = count > 0
    per_row = torch.where(used, total / torch.clamp(count, min=1.0), 0.0)
    return per_row.sum() / torch.clamp(used.sum().float(), min=1.0)
