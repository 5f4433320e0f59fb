"""rank: which process of a Multiverse world this is, so only rank 0 prints, logs and saves."""

from __future__ import annotations

import os

from nebulae import law


def rank() -> int:
    """This process's rank: the bound engine's view of its world (torch.distributed rank, JAX process
    index), else the environment (RANK, as set by Multiverse and torchrun; NEB_RANK), else 0."""
    bound = law.bound_backend()
    if bound is not None:
        return bound.universe.rank()
    for name in ("RANK", "NEB_RANK"):
        if os.environ.get(name, "").strip().lstrip("-").isdigit():
            return int(os.environ[name])
    return 0


def is_chief() -> bool:
    """Whether this process is rank 0 (the one that prints, logs and writes checkpoints)."""
    return rank() == 0
