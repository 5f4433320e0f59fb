"""Pad and Identity; the padding-mode constants CONSTANT, REFLECT and BORDER (= replicate)."""

from __future__ import annotations

import functools
from typing import Any, Protocol

__all__ = ["Pad", "Identity"]

CONSTANT = 10
REFLECT = 11
BORDER = 12
CONSTANTS = ("CONSTANT", "REFLECT", "BORDER")  # the padding-mode constants the docks export
_MODES = {CONSTANT: "constant", REFLECT: "reflect", BORDER: "replicate"}
_NAMES = {"constant": "constant", "reflect": "reflect", "replicate": "replicate", "border": "replicate"}


class Kernels(Protocol):
    def pad(self, x: Any, pads: tuple, mode: str, value: float) -> Any:
        """`x` padded in F.pad order (last dimension first): 'constant' with `value` (negative pads crop),
        'reflect' (each pad smaller than its dimension) or 'replicate'."""


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


@functools.lru_cache(maxsize=64)
def _every_spatial(pad: int, ndim: int) -> tuple[int, ...]:
    return (pad,) * (2 * (ndim - 2))


class Pad:
    """Pad the trailing dimensions in F.pad order (left, right, top, bottom, front, back), as F.pad.

    Args:
        padding: an int (every spatial dimension: all but N and C) or an even-length list in F.pad order.
        mode: CONSTANT (with `value`; negative pads crop), REFLECT or BORDER (replicate), or their names
            'constant', 'reflect', 'replicate'.
        value: the fill value of CONSTANT padding.
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, padding: int | tuple, mode: int | str = CONSTANT, value: float = 0.0, scope: str = "PAD"):
        super().__init__(scope)
        self.padding, self.mode, self.value = fpad_list(padding), mode, float(value)
        self.fmode = mode_name(mode)

    def run(self, x):
        pads = _every_spatial(self.padding, x.ndim) if isinstance(self.padding, int) else self.padding
        if len(pads) > 2 * x.ndim:
            raise ValueError(f"Pad: {len(pads) // 2} padded dimensions for a {x.ndim}-D input")
        return self.ops.pad(x, pads, self.fmode, self.value)


class Identity:
    """Return the input unchanged.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "IDENTITY"):
        super().__init__(scope)

    def run(self, x):
        return x
