"""Resampling kernels on torch: torch.nn.functional's interpolate, pixel (un)shuffle and grid_sample."""

import functools

import torch
import torch.nn.functional as F

from nebulae.astro.crafts.resample import warp_base


def zoom(x, size, scale, mode, aligned):
    return F.interpolate(x, size, scale, mode, aligned)


def pixel_shuffle(x, factor):
    return F.pixel_shuffle(x, factor)


def pixel_unshuffle(x, factor):
    return F.pixel_unshuffle(x, factor)


def grid_sample(x, grid, mode, padding, aligned):
    return F.grid_sample(x, grid, mode, padding, aligned)


def warp_grid(flow, aligned):
    origin, unit = _base(*flow.shape[2:], aligned, flow.device, flow.dtype)
    return (origin + flow * unit).permute(0, 2, 3, 1)


@functools.lru_cache(maxsize=64)
def _base(h, w, aligned, device, dtype):
    """warp_base as tensors on `device` in `dtype`, built once per size, alignment, device and dtype."""
    return tuple(torch.from_numpy(a).to(device, dtype) for a in warp_base(h, w, aligned))
