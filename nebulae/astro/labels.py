"""The class-label rule shared by both engines' losses and metrics (SftmXE, AccCls), written once.

A label equal to `ignore_index` (default -100, torch's) is left out: losses average over the other
labels (all left out: NaN, as torch's mean), accuracy counts only the other labels. Any other label
outside [0, C) is an error when value checks are on (nebulae.astro.checks), and makes the result
(and its gradient) NaN when they are off, on both engines.
"""

from __future__ import annotations

from nebulae.astro import checks

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


def bad_labels(y, nclass: int, ignore: int, craft: str, check, first_index):
    """Mask of the labels in `y` (an engine array) that are neither `ignore` nor a class id in [0, nclass).

    With value checks on, any such label raises the shared ValueError through the engine's `check`,
    naming the first one (`first_index(mask)`: the flat position of the first True entry).
    """
    bad = (y != ignore) & ((y < 0) | (y >= nclass))
    if checks.enabled():
        index = first_index(bad)
        check(~bad.any(), bad_label_message(craft, nclass, ignore, y.shape), label=y.reshape(-1)[index], index=index)
    return bad
