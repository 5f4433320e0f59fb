"""Comburant: a seeded chain of NumPy/OpenCV augmentations with paired semantics.

Images are RGB HWC uint8 until `End()` turns them into float32 in [0, 1]; ops after `End` see
floats. A call takes
- one image, (H, W) or (H, W, C), or one (T, H, W, C) sequence (one draw for all its frames);
- a list/tuple of arrays: a paired list (an image and its mask, or the frames of a sequence)
  that gets ONE random draw, applied to every item;
- a list of such lists, zipped: item i of every inner list forms a group with its own draw.
The output has the input's structure; every array is C-contiguous, so batches collate.

Randomness: each call draws from, in order of precedence, the `rng=` argument, the generator of
an enclosing `seeded(...)` block, or the Comburant's own generator (`seed=`, `reseed`). A loader
makes draws reproducible per sample, whatever the worker, by wrapping the call in
`with seeded((seed, epoch, index)):`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from .ops_base import Op, Site, channels
from .ops_color import Brighten, Contrast, Hue, Saturate
from .ops_geometry import Crop, Flip, Pad, Resize, Rotate
from .ops_quality import JPEG, Blur, Noise, Sharpen, WebP

__all__ = [
    "Comburant",
    "seeded",
    "Op",
    "Site",
    "Flip",
    "Crop",
    "Rotate",
    "Resize",
    "Pad",
    "Brighten",
    "Contrast",
    "Saturate",
    "Hue",
    "Blur",
    "Sharpen",
    "Noise",
    "JPEG",
    "WebP",
    "Random",
    "Only",
    "Void",
    "End",
    "HWC2CHW",
    "Whiten",
    "Sampling",
]

SeedLike = int | Sequence[int] | np.random.SeedSequence | np.random.Generator | None
Nested = np.ndarray | Sequence[np.ndarray] | Sequence[Sequence[np.ndarray]]
_local = threading.local()
SUM_TOLERANCE = 1e-6  # probabilities may miss a sum of 1 by float rounding


def _as_rng(seed: SeedLike) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


@contextmanager
def seeded(seed: SeedLike) -> Iterator[np.random.Generator]:
    """Within the block, Comburant calls without `rng=` draw from `np.random.default_rng(seed)` (on this thread).

    `seed` is anything NumPy takes (an int, a tuple of ints such as (seed, epoch, index), a
    SeedSequence) or a Generator; the generator in use is yielded.
    """
    rng = _as_rng(seed)
    stack = getattr(_local, "stack", [])
    _local.stack = [*stack, rng]
    try:
        yield rng
    finally:
        _local.stack = stack


def _nestable(op, where: str) -> Op:
    if not isinstance(op, Op):
        raise TypeError(f"{where}: expected a Comburant op, got {type(op).__name__}")
    if op.structural:
        raise ValueError(f"{where}: {type(op).__name__} is a fixed pipeline step and cannot be nested")
    return op


class Random(Op):
    """With one op: apply it with probability `p` (default 0.5). With several: apply exactly one of them.

    For several ops, `p` lists one probability per op (default: equal); they must sum to 1 up to
    float rounding (e.g. [0.3, 0.3, 0.4] or [1/3] * 3) and are normalised.
    """

    def __init__(self, *ops: Op, p: float | Sequence[float] | None = None):
        if not ops:
            raise ValueError("Random needs at least one op")
        self.ops = tuple(_nestable(op, "Random") for op in ops)
        self.needs_hwc = any(op.needs_hwc for op in self.ops)
        if len(ops) == 1:
            p = 0.5 if p is None else p
            if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise ValueError(f"Random with one op takes a probability p in [0, 1], got {p!r}")
            self.p = float(p)
            return
        if p is None:
            p = [1.0 / len(ops)] * len(ops)
        if isinstance(p, (int, float)) or len(p) != len(ops):
            raise ValueError(f"Random with {len(ops)} ops needs one probability per op, got p={p!r}")
        probs = np.asarray(p, np.float64)
        if not np.all(np.isfinite(probs)) or np.any(probs < 0):
            raise ValueError(f"Random probabilities must be finite and >= 0, got {list(p)}")
        if not math.isclose(probs.sum(), 1.0, rel_tol=0.0, abs_tol=SUM_TOLERANCE):
            raise ValueError(f"Random probabilities must sum to 1, got {list(p)} (sum {probs.sum():.9g})")
        self.p = tuple(float(v) for v in probs / probs.sum())

    def draw(self, rng, group):
        if len(self.ops) == 1:
            return (0, self.ops[0].draw(rng, group)) if rng.random() < self.p else None
        k = int(rng.choice(len(self.ops), p=self.p))
        return k, self.ops[k].draw(rng, group)

    def apply(self, x, params, site):
        if params is None:
            return x
        k, sub = params
        return self.ops[k].apply(x, sub, site)


class Only(Op):
    """Apply `op` only to the leaves at positions `at` of a paired list, e.g. colour ops to an image, not its mask."""

    def __init__(self, op: Op, at: int | Sequence[int] = 0):
        self.op = _nestable(op, "Only")
        self.at = (at,) if isinstance(at, int) else tuple(at)
        if not self.at or not all(isinstance(i, int) and i >= 0 for i in self.at):
            raise ValueError(f"Only: at must be a position or positions (ints >= 0), got {at!r}")
        self.needs_hwc = op.needs_hwc

    def draw(self, rng, group):
        chosen = [group[i] for i in self.at if i < len(group)]
        return self.op.draw(rng, chosen or group)

    def apply(self, x, params, site):
        return self.op.apply(x, params, site) if site.pos in self.at else x


class Void(Op):
    """Identity (e.g. the 'do nothing' choice of a Random)."""

    needs_hwc = False

    def apply(self, x, params, site):
        return x


class End(Op):
    """Convert to float32 in [0, 1] (uint8 / 255; floating data is only cast). Later ops see floats."""

    needs_hwc, structural = False, True

    def apply(self, x, params, site):
        if x.dtype == np.uint8:
            return x.astype(np.float32) / np.float32(255)
        return x.astype(np.float32, copy=False)


class HWC2CHW(Op):
    """Move channels first: (H, W, C) -> (C, H, W), (T, H, W, C) -> (T, C, H, W), (H, W) -> (1, H, W)."""

    structural = True

    def apply(self, x, params, site):
        if x.ndim == 2:
            return x[None]
        return np.ascontiguousarray(np.moveaxis(x, -1, -3))


class Whiten(Op):
    """(x - mean) / std per channel, as float32; `mean` and `std` are scalars or one value per channel.

    Applies to the values as they are (after `End`: [0, 1]); works before or after HWC2CHW and
    never adds an axis. Defaults: ImageNet statistics.
    """

    needs_hwc = False

    def __init__(
        self,
        mean: float | Sequence[float] = (0.485, 0.456, 0.406),
        std: float | Sequence[float] = (0.229, 0.224, 0.225),
    ):
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        for name, v in (("mean", self.mean), ("std", self.std)):
            if v.ndim > 1 or v.size == 0 or not np.all(np.isfinite(v)):
                raise ValueError(f"Whiten {name} must be a number or a sequence of numbers, got {v.tolist()!r}")
        if np.any(self.std <= 0):
            raise ValueError(f"Whiten std must be positive, got {self.std.tolist()}")
        self._rows = None  # (mean, std) tiled to one image row, cached per row length

    def apply(self, x, params, site):
        c = x.shape[-3] if site.chw else channels(x)
        for name, v in (("mean", self.mean), ("std", self.std)):
            if v.size not in (1, c):
                raise ValueError(f"Whiten {name} has {v.size} values for an image of {c} channels (shape {x.shape})")
        xf = x.astype(np.float32, copy=False)
        if self.mean.size == self.std.size == 1:
            return (xf - self.mean.reshape(())) / self.std.reshape(())
        mean, std = (np.broadcast_to(v, (c,)) for v in (self.mean, self.std))
        if site.chw:
            return (xf - mean[:, None, None]) / std[:, None, None]
        # per-channel values tiled along rows of (..., W * C): NumPy is slow broadcasting over a trailing axis of 3
        w = x.shape[-2]
        if self._rows is None or self._rows[0].size != w * c:
            self._rows = (np.tile(mean, w), np.tile(std, w))
        return ((xf.reshape(-1, w * c) - self._rows[0]) / self._rows[1]).reshape(x.shape)


class Sampling(Op):
    """Keep every `theta`-th frame of a sequence (frames 0, theta, 2 theta, ...), theta a positive int.

    Frames are axis 0 of a (T, H, W, C) array, the items of a list of 2-D/3-D arrays, or the
    zipped items of a list of such lists. It only selects frames, so it acts first wherever it
    is listed.
    """

    needs_hwc, structural = False, True

    def __init__(self, theta: int):
        if not isinstance(theta, (int, np.integer)) or isinstance(theta, bool) or theta < 1:
            raise ValueError(f"Sampling theta must be a positive int, got {theta!r}")
        self.theta = int(theta)

    def apply(self, x, params, site):
        return x[:: self.theta] if x.ndim == 4 else x


class Comburant:
    """A chain of augmentation ops applied with one random draw per group of paired images (see module doc).

    `seed` seeds the Comburant's own generator; `reseed(seed)` replaces it (e.g. per worker).
    """

    def __init__(self, *ops: Op, seed: SeedLike = None):
        self.ops = ops
        self._steps: list[tuple[Op, bool]] = []
        self._stride = 1
        chw = ended = False
        for i, op in enumerate(ops):
            if not isinstance(op, Op):
                raise TypeError(f"Comburant op {i}: expected an op such as Flip() or End(), got {type(op).__name__}")
            if isinstance(op, Sampling):
                self._stride *= op.theta
                continue
            if op.needs_hwc and chw:
                raise ValueError(f"Comburant op {i} ({type(op).__name__}) needs HWC images but comes after HWC2CHW")
            if isinstance(op, End):
                if ended:
                    raise ValueError(f"Comburant op {i}: End appears twice")
                ended = True
            self._steps.append((op, chw))
            chw = chw or isinstance(op, HWC2CHW)
        self._rng = _as_rng(seed)

    def reseed(self, seed: SeedLike) -> None:
        """Replace the own generator by `np.random.default_rng(seed)` (or by `seed` if it is a Generator)."""
        self._rng = _as_rng(seed)

    def __call__(self, src: Nested, rng: SeedLike = None) -> Nested:
        """Augment `src` (an array, a paired list, or a list of lists); `rng` overrides the generator."""
        if rng is not None:
            rng = _as_rng(rng)
        else:
            stack = getattr(_local, "stack", None)
            rng = stack[-1] if stack else self._rng
        if isinstance(src, np.ndarray):
            return self._group([_leaf(src, "the input")], rng)[0]
        if not isinstance(src, (list, tuple)):
            raise TypeError(f"Comburant takes an array, a list of arrays or a list of lists, got {type(src).__name__}")
        if all(isinstance(s, np.ndarray) for s in src):
            leaves = [_leaf(s, f"item [{i}]") for i, s in enumerate(src)]
            return type(src)(self._group(self._frames(leaves), rng))
        if not all(isinstance(s, (list, tuple)) for s in src):
            raise TypeError("Comburant: a list must hold only arrays or only lists of arrays, not a mix")
        lengths = [len(s) for s in src]
        if len(set(lengths)) > 1:
            raise ValueError(f"Comburant: the inner lists are zipped and must have equal lengths, got {lengths}")
        groups = [[_leaf(x, f"item [{i}][{j}]") for i, x in enumerate(g)] for j, g in enumerate(zip(*src))]
        if groups and all(x.ndim < 4 for g in groups for x in g):
            groups = groups[:: self._stride]
        out = [self._group(g, rng) for g in groups]
        return type(src)(type(inner)(x[i] for x in out) for i, inner in enumerate(src))

    def _frames(self, leaves: list[np.ndarray]) -> list[np.ndarray]:
        if self._stride > 1 and all(x.ndim < 4 for x in leaves):
            return leaves[:: self._stride]
        return leaves

    def _group(self, leaves: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        if self._stride > 1:
            leaves = [x[:: self._stride] if x.ndim == 4 else x for x in leaves]
        if not leaves:
            return leaves
        for op, chw in self._steps:
            params = op.draw(rng, leaves)
            leaves = [op.apply(x, params, Site(i, chw)) for i, x in enumerate(leaves)]
        return [np.ascontiguousarray(x) for x in leaves]

    def __repr__(self) -> str:
        return f"Comburant({', '.join(map(repr, self.ops))})"


def _leaf(x: np.ndarray, where: str) -> np.ndarray:
    if not 2 <= x.ndim <= 4:
        raise ValueError(f"Comburant {where}: expected (H, W), (H, W, C) or (T, H, W, C), got shape {x.shape}")
    if x.dtype not in (np.uint8, np.float32, np.float64):
        raise TypeError(f"Comburant {where}: expected uint8 (0-255) or float32/float64 (0-1) data, got {x.dtype}")
    return x
