"""The class-label rule shared by both engines' losses and metrics (SftmXE, AccCls), written once.

A label equal to `ignore_index` (default -100, torch's) is left out: losses average over the other
labels (all left out: NaN, as torch's mean), accuracy counts only the other labels. Any other label
outside [0, C) is an error when value checks are on (nebulae.astro.checks), and makes the result
(and its gradient) NaN when they are off, on both engines.
"""

from __future__ import annotations

IGNORE_INDEX = -100


def ignore_index(value, craft: str) -> int:
    """Check a craft's `ignore_index` argument (an integer); int value."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{craft}: ignore_index must be an integer (default {IGNORE_INDEX}), got {value!r}")
    return value


def bad_label_message(craft: str, nclass: int, ignore: int, shape) -> str:
    """The value check's message, with `{label}` and `{index}` fields for the first bad label and its position."""
    shape = tuple(int(n) for n in shape)
    where = "at index {index}" if len(shape) == 1 else f"at flat index {{index}} of the labels {shape}"
    return (
        f"{craft}: label {{label}} {where} is not a class id in [0, {nclass}) ({nclass} classes) "
        f"nor ignore_index {ignore}; fix the labels, or set the labels to skip to {ignore}"
    )
