"""Pad and Identity on torch; the padding-mode constants CONSTANT, REFLECT and BORDER (= replicate)."""

from __future__ import annotations

import torch.nn.functional as F

from nebulae.astro.padargs import BORDER, CONSTANT, REFLECT, fpad_list, mode_name

from .craft import Craft

__all__ = ["CONSTANT", "REFLECT", "BORDER", "Pad", "Identity"]


class Pad(Craft):
    """Pad the trailing dimensions in F.pad order (left, right, top, bottom, front, back); an int pads every
    spatial dimension (all but N and C). Modes: CONSTANT (with `value`; negative pads crop), REFLECT, BORDER."""

    def __init__(self, padding, mode=CONSTANT, value: float = 0.0, scope: str = "PAD"):
        super().__init__(scope)
        self.padding, self.mode, self.value = fpad_list(padding), mode_name(mode), float(value)
        self._by_rank: dict[int, tuple[int, ...]] = {}

    def run(self, x):
        pads = self.padding
        if isinstance(pads, int):
            pads = self._by_rank.get(x.ndim) or self._by_rank.setdefault(x.ndim, (pads,) * (2 * (x.ndim - 2)))
        if self.mode == "constant":
            return F.pad(x, pads, "constant", self.value)
        return F.pad(x, pads, self.mode)


class Identity(Craft):
    """Return the input unchanged."""

    def __init__(self, scope: str = "IDENTITY"):
        super().__init__(scope)

    def run(self, x):
        return x
