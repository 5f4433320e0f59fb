"""Resampling: Zoom (F.interpolate), SubPix / SurPix (pixel shuffle / unshuffle), GridSample and Warp.

Interpolation constants NEAREST, LINEAR, CUBIC, AREA (or the strings 'nearest', 'linear', 'cubic', 'area');
padding modes for sampling CONSTANT (zeros), BORDER and REFLECT (the padding-mode constants, or their names).
The kernels take torch.nn.functional's mode names ('bilinear', 'zeros', ...); the numbers match F.interpolate,
F.pixel_(un)shuffle and F.grid_sample on both engines.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

import numpy as np

from .base import check_float_input
from .pad import BORDER, CONSTANT, REFLECT

__all__ = ["Zoom", "SubPix", "SurPix", "GridSample", "Warp"]
CONSTANTS = ("NEAREST", "LINEAR", "CUBIC", "AREA")  # the interpolation constants the docks export

NEAREST = 0
LINEAR = 1
CUBIC = 2
AREA = 3
INTERP_NAMES = {"nearest": NEAREST, "linear": LINEAR, "cubic": CUBIC, "area": AREA}
ZOOM_MODES = {  # interpolation -> {input rank: F.interpolate mode}
    NEAREST: {3: "nearest", 4: "nearest", 5: "nearest"},
    LINEAR: {3: "linear", 4: "bilinear", 5: "trilinear"},
    CUBIC: {4: "bicubic"},
    AREA: {3: "area", 4: "area", 5: "area"},
}
SAMPLE_MODES = {NEAREST: "nearest", LINEAR: "bilinear", CUBIC: "bicubic"}
SAMPLE_PADS = {CONSTANT: "zeros", BORDER: "border", REFLECT: "reflection"}
SAMPLE_PAD_NAMES = {
    "constant": CONSTANT, "zeros": CONSTANT, "border": BORDER, "replicate": BORDER, "reflect": REFLECT,
    "reflection": REFLECT,
}  # fmt: skip


class Kernels(Protocol):
    def zoom(self, x: Any, size: Any, scale: Any, mode: str, aligned: bool | None) -> Any:
        """F.interpolate(x, size, scale, mode, aligned); JAX resizes non-floating data with 'nearest' only."""

    def pixel_shuffle(self, x: Any, factor: int) -> Any:
        """(*, C r^2, H, W) -> (*, C, H r, W r) for the factor r, as F.pixel_shuffle."""

    def pixel_unshuffle(self, x: Any, factor: int) -> Any:
        """(*, C, H r, W r) -> (*, C r^2, H, W) for the factor r, as F.pixel_unshuffle."""

    def grid_sample(self, x: Any, grid: Any, mode: str, padding: str, aligned: bool) -> Any:
        """F.grid_sample(x, grid, mode, padding, aligned) of a checked NC* `x` and (N, *out, ndim) `grid`."""

    def warp_grid(self, flow: Any, aligned: bool) -> Any:
        """The (N, H, W, 2) sampling grid of pixel centres moved by the pixel-unit `flow` (N, 2, H, W), in flow's
        dtype and on its device (`warp_base` turned into an array)."""


def interp_code(interp, allowed: tuple, what: str) -> int:
    """NEAREST/LINEAR/CUBIC/AREA or their names -> the constant, checked against what `what` supports."""
    code = INTERP_NAMES.get(interp.lower()) if isinstance(interp, str) else interp
    if code not in allowed:
        names = ", ".join(n for n, c in INTERP_NAMES.items() if c in allowed)
        raise ValueError(f"{what} interp must be one of {names} (or their constants), got {interp!r}")
    return code


def sample_pad_code(pad_mode) -> int:
    """CONSTANT (zeros) / BORDER / REFLECT or their names -> the constant."""
    code = SAMPLE_PAD_NAMES.get(pad_mode.lower()) if isinstance(pad_mode, str) else pad_mode
    if code not in SAMPLE_PADS:
        raise ValueError(f"pad_mode must be CONSTANT (zeros), BORDER or REFLECT, got {pad_mode!r}")
    return code


def zoom_target(size, scale) -> tuple:
    """Check Zoom's size / scale (exactly one given); (size tuple or int or None, scale tuple or float or None)."""
    size = None if size is None or size == () else size
    scale = None if scale is None or scale == () else scale
    if (size is None) == (scale is None):
        raise ValueError(f"Zoom needs exactly one of size and scale, got size={size!r}, scale={scale!r}")
    if size is not None:
        size = int(size) if isinstance(size, int) else tuple(int(s) for s in size)
        if min((size,) if isinstance(size, int) else size) < 1:
            raise ValueError(f"Zoom size must be positive, got {size}")
    else:
        scale = float(scale) if isinstance(scale, (int, float)) else tuple(float(s) for s in scale)
        if min((scale,) if isinstance(scale, float) else scale) <= 0:
            raise ValueError(f"Zoom scale must be positive, got {scale}")
    return size, scale


def scale_factor(scale) -> int:
    """A SubPix / SurPix factor: an int or a square (r, r) tuple."""
    if isinstance(scale, int):
        r = scale
    else:
        scale = tuple(int(s) for s in scale)
        if len(set(scale)) != 1:
            raise ValueError(f"pixel shuffling needs a square factor (r, r), got {scale}")
        r = scale[0]
    if r < 1:
        raise ValueError(f"pixel shuffling factor must be >= 1, got {scale}")
    return r


class Zoom:
    """Resize (N, C, *spatial) to `size` or by `scale` (exactly one), as F.interpolate.

    Args:
        size: the output spatial size: an int for every spatial dimension, or one int per dimension.
        scale: the factor per spatial dimension (a float for all, or one per dimension); the output size is
            floor(input size * scale).
        interp: NEAREST, LINEAR (linear, bilinear or trilinear by the input's rank), CUBIC (4-D input only) or
            AREA (adaptive average pooling), or their names ('nearest', 'linear', 'cubic', 'area').
        aligned: align_corners of F.interpolate; LINEAR and CUBIC only (the others ignore it).
        scope: the name of this craft in checkpoints and summaries.

    The input must be 3-, 4- or 5-D with as many spatial dimensions as a per-dimension `size`/`scale`
    (ValueError otherwise); on JAX only NEAREST resizes non-floating data (TypeError otherwise).
    """

    def __init__(self, size=(), scale=(), interp=LINEAR, aligned: bool = True, scope: str = "ZOOM"):
        super().__init__(scope)
        size, scale = zoom_target(size, scale)
        self.size, self.scale = () if size is None else size, () if scale is None else scale
        self.interp = interp_code(interp, (NEAREST, LINEAR, CUBIC, AREA), "Zoom")
        self.aligned = bool(aligned) if self.interp in (LINEAR, CUBIC) else None
        target = scale if size is None else size
        self.rank = None if isinstance(target, (int, float)) else len(target) + 2

    def run(self, x):
        mode = ZOOM_MODES[self.interp].get(x.ndim)
        if mode is None or (self.rank is not None and self.rank != x.ndim):
            raise ValueError(self._error(x.shape))
        return self.ops.zoom(x, self.size or None, self.scale or None, mode, self.aligned)

    def _error(self, shape) -> str:
        """The message for an input this Zoom cannot resize."""
        if (self.rank or len(shape)) != len(shape):
            return (
                f"Zoom: {self.size or self.scale} has {self.rank - 2} spatial sizes but the input {tuple(shape)}"
                f" has {len(shape) - 2}"
            )
        if self.interp == CUBIC:
            return f"Zoom: CUBIC interpolation works on 4-D (N, C, H, W) inputs only, got shape {tuple(shape)}"
        return f"Zoom needs a 3-, 4- or 5-D (N, C, *spatial) input, got shape {tuple(shape)}"


class SubPix:
    """Pixel shuffle: (*, C r^2, H, W) -> (*, C, H r, W r), as F.pixel_shuffle.

    Args:
        scale: the factor r: an int or a square (r, r).
        scope: the name of this craft in checkpoints and summaries.

    The channels must divide by r^2 (torch raises its RuntimeError, JAX a ValueError).
    """

    def __init__(self, scale: int | tuple, scope: str = "SUBPIX"):
        super().__init__(scope)
        self.scale = scale_factor(scale)

    def run(self, x):
        return self.ops.pixel_shuffle(x, self.scale)


class SurPix:
    """Pixel unshuffle: (*, C, H r, W r) -> (*, C r^2, H, W), as F.pixel_unshuffle (the inverse of SubPix).

    Args:
        scale: the factor r: an int or a square (r, r).
        scope: the name of this craft in checkpoints and summaries.

    The height and width must divide by r (torch raises its RuntimeError, JAX a ValueError).
    """

    def __init__(self, scale: int | tuple, scope: str = "SURPIX"):
        super().__init__(scope)
        self.scale = scale_factor(scale)

    def run(self, x):
        return self.ops.pixel_unshuffle(x, self.scale)


class _Sampler:
    """What GridSample and Warp share: the interpolation, padding and alignment of F.grid_sample."""

    def _setup(self, interp, aligned: bool, pad_mode) -> None:
        self.interp = interp_code(interp, (NEAREST, LINEAR, CUBIC), type(self).__name__)
        self.pad_mode = sample_pad_code(pad_mode)
        self.aligned = bool(aligned)
        self.mode, self.padding = SAMPLE_MODES[self.interp], SAMPLE_PADS[self.pad_mode]

    def _sample(self, x, grid):
        if x.ndim not in (4, 5) or (self.interp == CUBIC and x.ndim != 4):
            kind = "4-D (N, C, H, W)" if self.interp == CUBIC else "4-D or 5-D"
            raise ValueError(f"{type(self).__name__} ({self.mode}) needs a {kind} input, got shape {tuple(x.shape)}")
        nd = x.ndim - 2
        if grid.ndim != x.ndim or grid.shape[-1] != nd or grid.shape[0] != x.shape[0]:
            raise ValueError(
                f"GridSample: grid must be (N, *out, {nd}) for x {tuple(x.shape)}, got {tuple(grid.shape)}"
            )
        check_float_input(self.ops, x, type(self).__name__)
        return self.ops.grid_sample(x, grid, self.mode, self.padding, self.aligned)


class GridSample(_Sampler):
    """Sample x (N, C, H, W) or (N, C, D, H, W) at grid (N, *out, 2 or 3), as F.grid_sample.

    Args:
        interp: NEAREST, LINEAR or CUBIC (4-D input only), or their names.
        aligned: align_corners of F.grid_sample: -1 and 1 are the centres of the corner pixels (True) or
            their outer edges (False).
        pad_mode: outside the input: CONSTANT (zeros), BORDER or REFLECT, or their names ('zeros',
            'border', 'reflection', ...).
        scope: the name of this craft in checkpoints and summaries.

    `run(x, grid)`: the grid holds (x, y[, z]) coordinates in [-1, 1] (x along W); the output is
    (N, C, *out). A bad rank or grid shape is a ValueError, a non-floating x a TypeError.
    """

    def __init__(self, interp=LINEAR, aligned: bool = True, pad_mode=CONSTANT, scope: str = "GRIDSAMPLE"):
        super().__init__(scope)
        self._setup(interp, aligned, pad_mode)

    def run(self, x, grid):
        return self._sample(x, grid)


class Warp(_Sampler):
    """Backward warping of x (N, C, H, W) by a pixel-unit flow (N, 2, H, W): output[p] = x[p + flow[p]].

    Args:
        interp: NEAREST, LINEAR or CUBIC, or their names.
        aligned: align_corners of the underlying F.grid_sample; integer flows move whole pixels either way.
        pad_mode: outside the input: CONSTANT (zeros), BORDER or REFLECT, or their names.
        scope: the name of this craft in checkpoints and summaries.

    `run(x, flow)`: flow[:, 0] moves along W and flow[:, 1] along H, sampled as GridSample; flow must be
    (N, 2, H, W) with x's H and W (ValueError otherwise).
    """

    def __init__(self, interp=LINEAR, aligned: bool = True, pad_mode=CONSTANT, scope: str = "WARP"):
        super().__init__(scope)
        self._setup(interp, aligned, pad_mode)

    def run(self, x, flow):
        if x.ndim != 4 or flow.ndim != 4 or flow.shape[1] != 2 or flow.shape[2:] != x.shape[2:]:
            raise ValueError(
                f"Warp needs x (N, C, H, W) and flow (N, 2, H, W) of the same H, W; got {tuple(x.shape)} and"
                f" {tuple(flow.shape)}"
            )
        return self._sample(x, self.ops.warp_grid(flow, self.aligned))


@functools.lru_cache(maxsize=64)
def warp_base(h: int, w: int, aligned: bool) -> tuple[np.ndarray, np.ndarray]:
    """The normalised base grid (1, 2, H, W) of pixel centres and the per-pixel step (1, 2, 1, 1) that
    F.grid_sample with this `aligned` maps back to whole pixels (float64)."""
    gy, gx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    if aligned:
        ux, uy = 2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)
        origin = np.stack([gx * ux - 1.0, gy * uy - 1.0])
    else:
        ux, uy = 2.0 / w, 2.0 / h
        origin = np.stack([(2.0 * gx + 1.0) / w - 1.0, (2.0 * gy + 1.0) / h - 1.0])
    unit = np.array([ux, uy]).reshape(1, 2, 1, 1)
    return origin[None], unit
