"""Resampling crafts on torch: Zoom (interpolate), SubPix / SurPix (pixel shuffle / unshuffle), GridSample, Warp.

Interpolation constants NEAREST, LINEAR, CUBIC, AREA (or the strings 'nearest', 'linear', 'cubic', 'area');
padding modes for sampling are pad.CONSTANT (zeros), pad.BORDER and pad.REFLECT.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

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
from .pad import CONSTANT

__all__ = ["NEAREST", "LINEAR", "CUBIC", "AREA", "Zoom", "SubPix", "SurPix", "GridSample", "Warp"]


class Zoom(Craft):
    """Resize (N, C, *spatial) to `size` or by `scale` (exactly one) as F.interpolate: NEAREST, LINEAR (linear,
    bilinear or trilinear by rank), CUBIC (2-D only) or AREA; `aligned` is align_corners (LINEAR/CUBIC only)."""

    def __init__(self, size=(), scale=(), interp=LINEAR, aligned: bool = True, scope: str = "ZOOM"):
        super().__init__(scope)
        self.size, self.scale = zoom_target(size, scale)
        self.interp = interp_code(interp, (NEAREST, LINEAR, CUBIC, AREA), "Zoom")
        self.modes = _ZOOM_MODES[self.interp]
        self.aligned = bool(aligned) if self.interp in (LINEAR, CUBIC) else None
        target = self.size if self.size is not None else self.scale
        self.rank = None if isinstance(target, (int, float)) else len(target) + 2

    def run(self, x):
        mode = self.modes.get(x.ndim)
        if mode is None or (self.rank is not None and self.rank != x.ndim):
            raise ValueError(zoom_error(self, x.shape))
        return F.interpolate(x, self.size, self.scale, mode, self.aligned)


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
        return F.pixel_shuffle(x, self.scale)


class SurPix(Craft):
    """Pixel unshuffle: (*, C, H r, W r) -> (*, C r^2, H, W) for a factor r (an int or a square (r, r))."""

    def __init__(self, scale, scope: str = "SURPIX"):
        super().__init__(scope)
        self.scale = scale_factor(scale)

    def run(self, x):
        return F.pixel_unshuffle(x, self.scale)


class GridSample(Craft):
    """Sample x (N, C, H, W) or (N, C, D, H, W) at grid (N, *out, 2 or 3) of (x, y[, z]) coordinates in [-1, 1], as
    F.grid_sample: NEAREST, LINEAR or CUBIC (4-D only); pad_mode CONSTANT (zeros), BORDER or REFLECT."""

    def __init__(self, interp=LINEAR, aligned: bool = True, pad_mode=CONSTANT, scope: str = "GRIDSAMPLE"):
        super().__init__(scope)
        self.interp = interp_code(interp, (NEAREST, LINEAR, CUBIC), "GridSample")
        self.mode = _SAMPLE_MODES[self.interp]
        self.pad_mode = _SAMPLE_PADS[sample_pad_code(pad_mode)]
        self.aligned = bool(aligned)

    def run(self, x, grid):
        return F.grid_sample(x, grid, self.mode, self.pad_mode, self.aligned)


class Warp(Craft):
    """Backward warping of x (N, C, H, W) by a pixel-unit flow (N, 2, H, W): output[p] = x[p + flow[p]], with
    flow[:, 0] along W and flow[:, 1] along H, sampled as GridSample (so integer flows move whole pixels)."""

    def __init__(self, interp=LINEAR, aligned: bool = True, pad_mode=CONSTANT, scope: str = "WARP"):
        super().__init__(scope)
        self.sample = GridSample(interp, aligned, pad_mode)
        self.aligned = bool(aligned)
        self._bases: dict = {}

    def run(self, x, flow):
        if x.ndim != 4 or flow.ndim != 4 or flow.shape[1] != 2 or flow.shape[2:] != x.shape[2:]:
            raise ValueError(
                f"Warp needs x (N, C, H, W) and flow (N, 2, H, W) of the same H, W; got {tuple(x.shape)} and"
                f" {tuple(flow.shape)}"
            )
        key = (x.shape[2:], flow.device, flow.dtype)
        base = self._bases.get(key)
        if base is None:
            base = self._bases[key] = warp_base(*x.shape[2:], self.aligned, flow.device, flow.dtype)
        origin, unit = base
        grid = (origin + flow * unit).permute(0, 2, 3, 1)
        return self.sample(x, grid)


def warp_base(h: int, w: int, aligned: bool, device, dtype) -> tuple:
    """The normalised base grid (1, 2, H, W) of pixel centres and the per-pixel step (1, 2, 1, 1) that GridSample
    with this `aligned` maps back to whole pixels."""
    gy, gx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    if aligned:
        ux, uy = 2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)
        origin = torch.stack([gx * ux - 1.0, gy * uy - 1.0])
    else:
        ux, uy = 2.0 / w, 2.0 / h
        origin = torch.stack([(2.0 * gx + 1.0) / w - 1.0, (2.0 * gy + 1.0) / h - 1.0])
    unit = torch.tensor([ux, uy], dtype=torch.float64).view(1, 2, 1, 1)
    return origin[None].to(device, dtype), unit.to(device, dtype)
