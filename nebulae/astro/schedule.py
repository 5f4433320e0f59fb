"""Learning-rate schedules, one closed-form formula each, evaluated identically by both engines.

A schedule is a factor-free function of the number of applied updates `t` (0 for the first
update): `schedule(t, lr, xp)` returns the rate used by update `t`, with `xp` the array module
(`math`-like NumPy on torch, `jax.numpy` inside a compiled JAX step). Linear warm-up is built in:
with `warmup=W`, updates t < W use lr·(t+1)/W (never a zero rate), then the decay runs from
t - W. The original's double multiplication (PolyLR, ExpLR) and zero-rate warm-up are not copied.
"""

from __future__ import annotations

import math

import numpy as np


class Schedule:
    """Base class: `decay(t, lr, xp)` gives the rate after warm-up; `__call__` adds the warm-up."""

    def decay(self, t, lr, xp):
        raise TypeError(f"{type(self).__name__} must implement decay(t, lr, xp)")

    def __call__(self, t, lr, xp=np, warmup: int = 0):
        if warmup <= 0:
            return self.decay(t, lr, xp)
        warm = lr * (xp.minimum(t, warmup - 1) + 1) / warmup
        return xp.where(t < warmup, warm, self.decay(xp.maximum(t - warmup, 0), lr, xp))


class Constant(Schedule):
    """The base rate at every update."""

    def decay(self, t, lr, xp):
        return lr * xp.ones_like(xp.asarray(t, dtype=xp.float32))


class StepLR(Schedule):
    """lr · factor^floor(t / period)."""

    def __init__(self, period: int, factor: float = 0.1):
        self.period, self.factor = int(period), float(factor)

    def decay(self, t, lr, xp):
        return lr * xp.power(self.factor, xp.floor(xp.asarray(t, dtype=xp.float32) / self.period))


class PolyLR(Schedule):
    """Polynomial decay from lr to `end` at update `cutoff`: (lr - end)(1 - min(t, cutoff)/cutoff)^power + end."""

    def __init__(self, cutoff: int, power: float = 1.0, end: float = 1e-4):
        self.cutoff, self.power, self.end = int(cutoff), float(power), float(end)

    def decay(self, t, lr, xp):
        frac = 1.0 - xp.minimum(xp.asarray(t, dtype=xp.float32), self.cutoff) / self.cutoff
        return (lr - self.end) * xp.power(frac, self.power) + self.end


class CosLR(Schedule):
    """Cosine from lr down to lr·floor over `period` updates, then held at lr·floor."""

    def __init__(self, period: int, floor: float = 1e-3):
        self.period, self.floor = int(period), float(floor)

    def decay(self, t, lr, xp):
        frac = xp.minimum(xp.asarray(t, dtype=xp.float32), self.period) / self.period
        return lr * (self.floor + (1.0 - self.floor) * 0.5 * (1.0 + xp.cos(math.pi * frac)))


class ExpLR(Schedule):
    """lr · factor^(t / period)."""

    def __init__(self, period: int, factor: float = 0.1):
        self.period, self.factor = int(period), float(factor)

    def decay(self, t, lr, xp):
        return lr * xp.power(self.factor, xp.asarray(t, dtype=xp.float32) / self.period)


class WavyLR(Schedule):
    """Triangular cycles of `period` updates between lr/2 and lr; the amplitude shrinks ×dampen per cycle."""

    def __init__(self, period: int, dampen: float = 1.0):
        self.period, self.dampen = int(period), float(dampen)

    def decay(self, t, lr, xp):
        t = xp.asarray(t, dtype=xp.float32)
        cycle = xp.floor(t / self.period)
        x = xp.abs(2.0 * (t / self.period - cycle) - 1.0)
        return 0.5 * lr + 0.5 * lr * (1.0 - x) * xp.power(self.dampen, cycle)


def rate(schedule: Schedule | None, t, lr: float, warmup: int, xp=np):
    """The rate of update `t` for an optimizer with base `lr`, optional schedule and warm-up."""
    return (schedule or Constant())(t, lr, xp, warmup)


__all__ = ["Schedule", "StepLR", "PolyLR", "CosLR", "ExpLR", "WavyLR", "rate"]
