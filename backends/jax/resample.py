"""Resampling crafts on JAX: Zoom (interpolate), SubPix / SurPix (pixel shuffle / unshuffle), GridSample, Warp.

Interpolation constants NEAREST, LINEAR, CUBIC, AREA (or the strings 'nearest', 'linear', 'cubic', 'area');
padding modes for sampling are pad.CONSTANT (zeros), pad.BORDER and pad.REFLECT. Written with gathers and
torch's own index and weight formulas (jax.image.resize has no align_corners, another nearest rounding and
another cubic kernel), so the numbers match F.interpolate / F.grid_sample.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from nebulae.astro.resampleargs import (
    AREA,
    CUBIC,
    LINEAR,
    NEAREST,
    interp_code,
    sample_pad_code,
    scale_factor,
    zoom_target,
)
from nebulae.astro.resampleargs import SAMPLE_MODES as _SAMPLE_MODES
from nebulae.astro.resampleargs import SAMPLE_PADS as _SAMPLE_PADS
from nebulae.astro.resampleargs import ZOOM_MODES as _ZOOM_MODES

from .craft import Craft
from .pad import CONSTANT, REFLECT

__all__ = ["NEAREST", "LINEAR", "CUBIC", "AREA", "Zoom", "SubPix", "SurPix", "GridSample", "Warp"]

CUBIC_A = -0.75  # torch's bicubic coefficient


def _cubic_coefficients(t, xp=np):
    """torch's get_cubic_upsample_coefficients (A = -0.75) for fractions t: shape (..., 4), in the dtype of t."""
    a = CUBIC_A
    x = xp.stack([t + 1, t, 1 - t, (1 - t) + 1], -1)
    near = ((a + 2) * x - (a + 3)) * x * x + 1  # for |x| <= 1 (the two inner taps)
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a  # for 1 < |x| < 2 (the two outer taps)
    return xp.where(np.array([False, True, True, False]), near, far)


@functools.lru_cache(maxsize=256)
def _zoom_taps(interp: int, n_in: int, n_out: int, scale, aligned: bool, rank: int) -> tuple:
    """(indices (out, taps), weights (out, taps) or None, divisor (out, 1) or None) along one axis, with the index
    and weight formulas of torch's CPU upsampling kernels (UpSample.h, UpSampleKernel.cpp) in float32."""
    f32 = np.float32
    dst = np.arange(n_out, dtype=f32)
    if interp == NEAREST:
        if rank == 4 and n_out in (n_in, 2 * n_in):  # torch's 2-D CPU kernel (nearest_idx) special-cases these
            return (np.arange(n_out) // (n_out // n_in))[:, None], None, None
        ratio = f32(1.0 / scale) if scale else f32(n_in) / f32(n_out)
        return np.minimum(np.floor(dst * ratio).astype(np.int64), n_in - 1)[:, None], None, None
    if interp == AREA:  # adaptive average pooling bins
        start = (np.arange(n_out) * n_in) // n_out
        end = ((np.arange(n_out) + 1) * n_in + n_out - 1) // n_out
        width = int((end - start).max())
        taps = start[:, None] + np.arange(width)[None]
        mask = (taps < end[:, None]).astype(f32)
        return np.minimum(taps, n_in - 1), mask, (end - start)[:, None].astype(f32)
    if aligned:
        ratio = f32(n_in - 1) / f32(n_out - 1) if n_out > 1 else f32(0)
        src = ratio * dst
    else:
        ratio = f32(1.0 / scale) if scale else f32(n_in) / f32(n_out)
        src = ratio * (dst + f32(0.5)) - f32(0.5)
    if interp == LINEAR:
        if n_out == n_in:
            return np.arange(n_out)[:, None], None, None
        src = np.maximum(src, f32(0))
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        lam = np.clip(src - i0.astype(f32), f32(0), f32(1))
        i1 = i0 + (i0 < n_in - 1)
        return np.stack([i0, i1], 1), np.stack([f32(1) - lam, lam], 1), None
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    lam = np.clip(src - i0.astype(f32), f32(0), f32(1))
    taps = np.clip(i0[:, None] - 1 + np.arange(4)[None], 0, n_in - 1)
    return taps, _cubic_coefficients(lam), None


def _resample_axis(x, axis: int, taps, weights, divisor):
    """Gather `taps` along `axis` and combine them with `weights` (then divide by `divisor`)."""
    n_out, k = taps.shape
    vals = jnp.take(x, jnp.asarray(taps.reshape(-1), jnp.int32), axis=axis)
    if weights is None:
        return vals
    vals = vals.reshape(x.shape[:axis] + (n_out, k) + x.shape[axis + 1 :])
    trailing = (1,) * (x.ndim - axis - 1)
    y = jnp.sum(vals * jnp.asarray(weights, x.dtype).reshape((n_out, k) + trailing), axis=axis + 1)
    return y if divisor is None else y / jnp.asarray(divisor, x.dtype).reshape((n_out,) + trailing)


class Zoom(Craft):
    """Resize (N, C, *spatial) to `size` or by `scale` (exactly one) as F.interpolate: NEAREST, LINEAR (linear,
    bilinear or trilinear by rank), CUBIC (2-D only) or AREA; `aligned` is align_corners (LINEAR/CUBIC only)."""

    def __init__(self, size=(), scale=(), interp=LINEAR, aligned: bool = True, scope: str = "ZOOM"):
        super().__init__(scope)
        self.size, self.scale = zoom_target(size, scale)
        self.interp = interp_code(interp, (NEAREST, LINEAR, CUBIC, AREA), "Zoom")
        self.ranks = tuple(_ZOOM_MODES[self.interp])  # input ranks it supports (Module attributes must hash)
        self.aligned = bool(aligned) if self.interp in (LINEAR, CUBIC) else None
        target = self.size if self.size is not None else self.scale
        self.rank = None if isinstance(target, (int, float)) else len(target) + 2

    def run(self, x):
        if x.ndim not in self.ranks or (self.rank is not None and self.rank != x.ndim):
            raise ValueError(zoom_error(self, x.shape))
        if self.interp != NEAREST and not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"Zoom: only NEAREST resizes {x.dtype} data on JAX; cast it to a floating dtype first")
        nd = x.ndim - 2
        if self.size is not None:
            sizes = (self.size,) * nd if isinstance(self.size, int) else self.size
            scales = (None,) * nd
        else:
            scales = (self.scale,) * nd if isinstance(self.scale, float) else self.scale
            sizes = tuple(int(n * s) for n, s in zip(x.shape[2:], scales))
            if self.interp == AREA:  # torch recomputes area from the integer size
                scales = (None,) * nd
        for i, (n_in, n_out, s) in enumerate(zip(x.shape[2:], sizes, scales)):
            if n_out < 1:
                raise ValueError(f"Zoom: scale {self.scale} gives an empty output from the input {tuple(x.shape)}")
            x = _resample_axis(x, 2 + i, *_zoom_taps(self.interp, n_in, n_out, s, bool(self.aligned), x.ndim))
        return x


def zoom_error(zoom, shape) -> str:
    """The message for an input Zoom cannot resize."""
    if (zoom.rank or len(shape)) != len(shape):
        target = zoom.size if zoom.size is not None else zoom.scale
        return f"Zoom: {target} has {zoom.rank - 2} spatial sizes but the input {tuple(shape)} has {len(shape) - 2}"
    if zoom.interp == CUBIC:
        return f"Zoom: CUBIC interpolation works on 4-D (N, C, H, W) inputs only, got shape {tuple(shape)}"
    return f"Zoom needs a 3-, 4- or 5-D (N, C, *spatial) input, got shape {tuple(shape)}"


class SubPix(Craft):
    """Pixel shuffle: (*, C r^2, H, W) -> (*, C, H r, W r) for a factor r (an int or a square (r, r))."""

    def __init__(self, scale, scope: str = "SUBPIX"):
        super().__init__(scope)
        self.scale = scale_factor(scale)

    def run(self, x):
        r, (c, h, w), lead = self.scale, x.shape[-3:], x.shape[:-3]
        if c % (r * r):
            raise ValueError(f"SubPix: channels {c} must divide by the squared factor {r * r}")
        y = x.reshape(lead + (c // (r * r), r, r, h, w))
        n = len(lead)
        y = y.transpose(*range(n), n, n + 3, n + 1, n + 4, n + 2)
        return y.reshape(lead + (c // (r * r), h * r, w * r))


class SurPix(Craft):
    """Pixel unshuffle: (*, C, H r, W r) -> (*, C r^2, H, W) for a factor r (an int or a square (r, r))."""

    def __init__(self, scale, scope: str = "SURPIX"):
        super().__init__(scope)
        self.scale = scale_factor(scale)

    def run(self, x):
        r, (c, h, w), lead = self.scale, x.shape[-3:], x.shape[:-3]
        if h % r or w % r:
            raise ValueError(f"SurPix: height {h} and width {w} must divide by the factor {r}")
        y = x.reshape(lead + (c, h // r, r, w // r, r))
        n = len(lead)
        y = y.transpose(*range(n), n, n + 2, n + 4, n + 1, n + 3)
        return y.reshape(lead + (c * r * r, h // r, w // r))


def _unnormalize(coord, size: int, aligned: bool):
    """[-1, 1] grid coordinates -> pixel coordinates (torch's vectorised CPU grid sampler form)."""
    if aligned:
        return (coord + 1) * ((size - 1) / 2)
    return (coord + 1) * (size / 2) - 0.5


def _reflect(coord, twice_low: int, twice_high: int):
    """torch's reflect_coordinates: fold a coordinate into [low, high] by reflections."""
    if twice_low == twice_high:
        return jnp.zeros_like(coord)
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    coord = jnp.abs(coord - low)
    extra = jnp.fmod(coord, span)
    flips = jnp.floor(coord / span)
    return jnp.where(jnp.fmod(flips, 2) == 0, extra + low, span - extra + low)


def _bound(coord, size: int, pad: int, aligned: bool):
    """Apply BORDER / REFLECT padding to pixel coordinates (CONSTANT leaves them)."""
    if pad == CONSTANT:
        return coord
    if pad == REFLECT:
        coord = _reflect(coord, 0, 2 * (size - 1)) if aligned else _reflect(coord, -1, 2 * size - 1)
    return jnp.clip(coord, 0, size - 1)


def _outer(a, b, op):
    """op over every pair of taps: (..., K) and (..., L) -> (..., K * L), the last operand's taps fastest."""
    return op(a[..., :, None], b[..., None, :]).reshape(a.shape[:-1] + (-1,))


def grid_sample(x, grid, interp: int, pad: int, aligned: bool):
    """F.grid_sample on JAX: x (N, C, *spatial) sampled at grid (N, *out, ndim) with torch's formulas."""
    spatial, nd = x.shape[2:], x.ndim - 2
    if grid.ndim != x.ndim or grid.shape[-1] != nd or grid.shape[0] != x.shape[0]:
        raise ValueError(f"GridSample: grid must be (N, *out, {nd}) for x {tuple(x.shape)}, got {tuple(grid.shape)}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"GridSample needs floating data, got {x.dtype}")
    n, c, out = x.shape[0], x.shape[1], grid.shape[1:-1]
    grid = grid.reshape(n, -1, nd).astype(x.dtype)
    # per spatial dimension, taps (N, Q, K) as integer-valued coordinates with their weights; grid coordinate k
    # indexes the k-th spatial dimension counted from the last (x -> W, y -> H, z -> D)
    index = valid = weight = None
    for i, size in enumerate(spatial):
        coord = _unnormalize(grid[..., nd - 1 - i], size, aligned)
        if interp == CUBIC:  # padding applies to each tap, not to the sampling point
            low = jnp.floor(coord)
            taps = _bound(low[..., None] + jnp.arange(-1, 3, dtype=x.dtype), size, pad, aligned)
            w = _cubic_coefficients(coord - low, jnp)
        else:
            coord = _bound(coord, size, pad, aligned)
            coord = jnp.where(jnp.isfinite(coord), coord, -100.0)[..., None]  # torch's safe_downgrade_to_int_range
            if interp == NEAREST:
                taps, w = jnp.round(coord), None
            else:
                low = jnp.floor(coord)
                taps, w = jnp.concatenate([low, low + 1], -1), jnp.concatenate([low + 1 - coord, coord - low], -1)
        offset = jnp.clip(taps, 0, size - 1).astype(jnp.int32) * math.prod(spatial[i + 1 :])
        inside = (taps >= 0) & (taps <= size - 1)
        if index is None:
            index, valid, weight = offset, inside, w
        else:
            index, valid = _outer(index, offset, jnp.add), _outer(valid, inside, jnp.logical_and)
            weight = None if w is None else _outer(weight, w, jnp.multiply)
    k = index.shape[-1]
    vals = jax.vmap(lambda xb, ib: xb[:, ib])(x.reshape(n, c, -1), index.reshape(n, -1)).reshape(n, c, -1, k)
    vals = jnp.where(valid[:, None], vals, 0)
    y = vals[..., 0] if weight is None else jnp.sum(vals * weight[:, None], axis=-1)
    return y.reshape((n, c) + out)


class GridSample(Craft):
    """Sample x (N, C, H, W) or (N, C, D, H, W) at grid (N, *out, 2 or 3) of (x, y[, z]) coordinates in [-1, 1], as
    F.grid_sample: NEAREST, LINEAR or CUBIC (4-D only); pad_mode CONSTANT (zeros), BORDER or REFLECT."""

    def __init__(self, interp=LINEAR, aligned: bool = True, pad_mode=CONSTANT, scope: str = "GRIDSAMPLE"):
        super().__init__(scope)
        self.interp = interp_code(interp, (NEAREST, LINEAR, CUBIC), "GridSample")
        self.mode = _SAMPLE_MODES[self.interp]
        self.pad = sample_pad_code(pad_mode)
        self.pad_mode = _SAMPLE_PADS[self.pad]
        self.aligned = bool(aligned)

    def run(self, x, grid):
        if x.ndim not in (4, 5) or (self.interp == CUBIC and x.ndim != 4):
            kind = "4-D (N, C, H, W)" if self.interp == CUBIC else "4-D or 5-D"
            raise ValueError(f"GridSample ({self.mode}) needs a {kind} input, got shape {tuple(x.shape)}")
        return grid_sample(x, grid, self.interp, self.pad, self.aligned)


class Warp(Craft):
    """Backward warping of x (N, C, H, W) by a pixel-unit flow (N, 2, H, W): output[p] = x[p + flow[p]], with
    flow[:, 0] along W and flow[:, 1] along H, sampled as GridSample (so integer flows move whole pixels)."""

    def __init__(self, interp=LINEAR, aligned: bool = True, pad_mode=CONSTANT, scope: str = "WARP"):
        super().__init__(scope)
        self.sample = GridSample(interp, aligned, pad_mode)
        self.aligned = bool(aligned)

    def run(self, x, flow):
        if x.ndim != 4 or flow.ndim != 4 or flow.shape[1] != 2 or flow.shape[2:] != x.shape[2:]:
            raise ValueError(
                f"Warp needs x (N, C, H, W) and flow (N, 2, H, W) of the same H, W; got {tuple(x.shape)} and"
                f" {tuple(flow.shape)}"
            )
        origin, unit = warp_base(*x.shape[2:], self.aligned)
        grid = jnp.asarray(origin, flow.dtype) + flow * jnp.asarray(unit, flow.dtype)
        return self.sample(x, jnp.transpose(grid, (0, 2, 3, 1)))


@functools.lru_cache(maxsize=64)
def warp_base(h: int, w: int, aligned: bool) -> tuple:
    """The normalised base grid (1, 2, H, W) of pixel centres and the per-pixel step (1, 2, 1, 1) that GridSample
    with this `aligned` maps back to whole pixels."""
    gy, gx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    if aligned:
        ux, uy = 2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)
        origin = np.stack([gx * ux - 1.0, gy * uy - 1.0])
    else:
        ux, uy = 2.0 / w, 2.0 / h
        origin = np.stack([(2.0 * gx + 1.0) / w - 1.0, (2.0 * gy + 1.0) / h - 1.0])
    unit = np.array([ux, uy]).reshape(1, 2, 1, 1)
    return origin[None], unit
