"""Resampling kernels on JAX, written with gathers and torch's own index and weight formulas (jax.image.resize has
no align_corners, another nearest rounding and another cubic kernel), so the numbers match F.interpolate and
F.grid_sample."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from nebulae.astro.crafts.resample import AREA, CUBIC, LINEAR, NEAREST, warp_base

CUBIC_A = -0.75  # torch's bicubic coefficient
_INTERP = {
    "nearest": NEAREST, "linear": LINEAR, "bilinear": LINEAR, "trilinear": LINEAR, "bicubic": CUBIC, "area": AREA,
}  # fmt: skip


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


def zoom(x, size, scale, mode, aligned):
    interp = _INTERP[mode]
    if interp != NEAREST and not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"Zoom: only NEAREST resizes {x.dtype} data on JAX; cast it to a floating dtype first")
    nd = x.ndim - 2
    if size is not None:
        sizes = (size,) * nd if isinstance(size, int) else size
        scales = (None,) * nd
    else:
        scales = (scale,) * nd if isinstance(scale, float) else scale
        sizes = tuple(int(n * s) for n, s in zip(x.shape[2:], scales))
        if interp == AREA:  # torch recomputes area from the integer size
            scales = (None,) * nd
    for i, (n_in, n_out, s) in enumerate(zip(x.shape[2:], sizes, scales)):
        if n_out < 1:
            raise ValueError(f"Zoom: scale {scale} gives an empty output from the input {tuple(x.shape)}")
        x = _resample_axis(x, 2 + i, *_zoom_taps(interp, n_in, n_out, s, bool(aligned), x.ndim))
    return x


def pixel_shuffle(x, factor):
    r, (c, h, w), lead = factor, x.shape[-3:], x.shape[:-3]
    if c % (r * r):
        raise ValueError(f"SubPix: channels {c} must divide by the squared factor {r * r}")
    y = x.reshape(lead + (c // (r * r), r, r, h, w))
    n = len(lead)
    y = y.transpose(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return y.reshape(lead + (c // (r * r), h * r, w * r))


def pixel_unshuffle(x, factor):
    r, (c, h, w), lead = factor, x.shape[-3:], x.shape[:-3]
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


def _bound(coord, size: int, padding: str, aligned: bool):
    """Apply 'border' / 'reflection' padding to pixel coordinates ('zeros' leaves them)."""
    if padding == "zeros":
        return coord
    if padding == "reflection":
        coord = _reflect(coord, 0, 2 * (size - 1)) if aligned else _reflect(coord, -1, 2 * size - 1)
    return jnp.clip(coord, 0, size - 1)


def _outer(a, b, op):
    """op over every pair of taps: (..., K) and (..., L) -> (..., K * L), the last operand's taps fastest."""
    return op(a[..., :, None], b[..., None, :]).reshape(a.shape[:-1] + (-1,))


def grid_sample(x, grid, mode, padding, aligned):
    spatial, nd = x.shape[2:], x.ndim - 2
    n, c, out = x.shape[0], x.shape[1], grid.shape[1:-1]
    grid = grid.reshape(n, -1, nd).astype(x.dtype)
    # per spatial dimension, taps (N, Q, K) as integer-valued coordinates with their weights; grid coordinate k
    # indexes the k-th spatial dimension counted from the last (x -> W, y -> H, z -> D)
    index = valid = weight = None
    for i, size in enumerate(spatial):
        coord = _unnormalize(grid[..., nd - 1 - i], size, aligned)
        if mode == "bicubic":  # padding applies to each tap, not to the sampling point
            low = jnp.floor(coord)
            taps = _bound(low[..., None] + jnp.arange(-1, 3, dtype=x.dtype), size, padding, aligned)
            w = _cubic_coefficients(coord - low, jnp)
        else:
            coord = _bound(coord, size, padding, aligned)
            coord = jnp.where(jnp.isfinite(coord), coord, -100.0)[..., None]  # torch's safe_downgrade_to_int_range
            if mode == "nearest":
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


def warp_grid(flow, aligned):
    origin, unit = warp_base(*flow.shape[2:], aligned)
    grid = jnp.asarray(origin, flow.dtype) + flow * jnp.asarray(unit, flow.dtype)
    return jnp.transpose(grid, (0, 2, 3, 1))
