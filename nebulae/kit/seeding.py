"""destine: seed every random stream a run uses (Python, NumPy, nebulae's initialisers, the bound engine)."""

from __future__ import annotations

import importlib
import random

import numpy as np

from nebulae import law

__all__ = ["destine"]


def destine(seed: int) -> None:
    """Seed Python's `random`, NumPy's global generator, nebulae's initialiser stream and the bound engine.

    torch: `torch.manual_seed` (every CUDA device too); JAX has no global seed (its keys are explicit),
    its initial weights come from the initialiser stream seeded here. Bind the engine first for torch.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"destine: seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    from nebulae.astro import init

    init.seed(seed)
    bound = law.bound_backend()
    if bound is not None:
        importlib.import_module(f"{bound.__name__}.tensor").manual_seed(seed)
