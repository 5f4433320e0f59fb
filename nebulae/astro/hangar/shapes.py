"""Checks of the (C, H, W) input shapes the hangar models are built for."""

from __future__ import annotations


def chw(in_shape, model: str, multiple: int = 1) -> tuple[int, int, int]:
    """`in_shape` as a (C, H, W) tuple of positive ints whose H and W divide by `multiple`, else ValueError."""
    try:
        c, h, w = (int(s) for s in in_shape)
    except (TypeError, ValueError):
        raise ValueError(f"{model}: in_shape must be (C, H, W), got {in_shape!r}") from None
    if min(c, h, w) < 1:
        raise ValueError(f"{model}: in_shape must be (C, H, W) of positive sizes, got {in_shape!r}")
    if h % multiple or w % multiple:
        raise ValueError(f"{model}: H and W must be multiples of {multiple}, got in_shape (C, H, W) = {in_shape!r}")
    return c, h, w


def check_input(x, chs: int, multiple: int, model: str) -> None:
    """Refuse an input that is not (B, chs, H, W) with H and W multiples of `multiple`."""
    shape = tuple(x.shape)
    if len(shape) != 4 or shape[1] != chs or shape[2] % multiple or shape[3] % multiple:
        raise ValueError(
            f"{model} takes (B, {chs}, H, W) inputs with H and W multiples of {multiple}, got shape {shape}"
        )
