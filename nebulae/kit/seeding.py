"""destine: seed every random stream a run uses (Python, NumPy, nebulae's initialisers, the engine)."""

from __future__ import annotations

import random

import numpy as np

from nebulae import law

__all__ = ["destine"]


def destine(seed: int) -> None:
    """Seed Python's `random`, NumPy's global generator, nebulae's initialiser stream and the engine.

    Call it anywhere: before the engine is bound (the top of a script) the engine's seed is kept and
    applied when the engine binds; after, at once. Calling it again with the same seed starts every
    stream over. torch: `torch.manual_seed` (CPU and every CUDA device), which draws dropout masks and
    noise. JAX has no global generator: each random craft (Dropout, Gauss, Rand* augmentations,
    attention dropout) owns a key seeded from the initialiser stream when it is built, so build the
    model after `destine`. The same seed gives the same initial weights on both engines, but not the
    same dropout masks (torch's generator and JAX's threefry keys differ).

    Args:
        seed: a non-negative integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"destine: seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    from nebulae.astro import init

    init.seed(seed)
    law.seed_engine(seed)
