"""Pad and Identity on torch; the padding-mode constants CONSTANT, REFLECT and BORDER (= replicate)."""

from __future__ import annotations

import torch.nn.functional as F

from .craft import Craft

__all__ = ["CONSTANT", "REFLECT", "BORDER", "Pad", "Identity"]

CONSTANT = 10
REFLECT = 11
BORDER = 12
_MODES = {CONSTANT: "constant", REFLECT: "reflect", BORDER: "replicate"}
_NAMES = {"constant": "constant", "reflect": "reflect", "replicate": "replicate", "border": "replicate"}


def mode_name(mode) -> str:
    """CONSTANT/REFLECT/BORDER or 'constant'/'reflect'/'replicate' ('border') -> the F.pad mode name."""
    name = _MODES.get(mode) if isinstance(mode, int) else _NAMES.get(str(mode).lower())
    if name is None:
        raise ValueError(
            f"padding mode must be CONSTANT, REFLECT, BORDER or 'constant'/'reflect'/'replicate', got {mode!r}"
        )
    return name


def fpad_list(padding) -> tuple[int, ...] | int:
    """Check a Pad argument: an int (every spatial dimension) or an even-length list in F.pad order."""
    if isinstance(padding, int):
        return padding
    padding = tuple(int(p) for p in padding)
    if not padding or len(padding) % 2:
        raise ValueError(
            f"Pad needs an int or an even-length list in F.pad order (last dimension first), got {padding}"
        )
    return padding


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
