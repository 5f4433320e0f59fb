"""Transitional: what not-yet-ported family modules import (removed when the last family moves to crafts/)."""

import numpy as np
import torch
from torch import nn

__all__: list[str] = []


def parameter(array):
    return None if array is None else nn.Parameter(torch.from_numpy(np.ascontiguousarray(array)))


def __getattr__(name):
    if name == "Dense":
        from nebulae.astro.crafts import linear
        from nebulae.astro.crafts.binding import bind

        from .craft import Craft

        globals()["Dense"] = bind(linear.Dense, Craft, __name__)
        return globals()["Dense"]
    raise AttributeError(name)
