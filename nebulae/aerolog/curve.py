"""Text drawings for the terminal: curves of recent points, a progress bar, an array as an image."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["draw_compact", "draw_curve", "draw_bar", "draw_image", "ordinal", "BLOCKS", "ASCII_BLOCKS"]

LABEL = 10  # width of the y-axis labels
RAMP = "@%#*+=-:. "  # dark (0.0) to blank (1.0)
BLOCKS = " ▁▂▃▄▅▆▇█"  # a cell filled 0/8 to 8/8 from the bottom
ASCII_BLOCKS = " ..--==##"  # the same levels where the output cannot encode block elements


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st, 111th."""
    if n % 100 in (11, 12, 13):
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def draw_bar(done: int, total: int, cells: int = 20) -> str:
    """A bar of `cells` characters, `done / total` filled; with `total <= 0` (unknown length) one block
    bounces across the bar as `done` grows."""
    if total > 0:
        filled = min(cells, max(0, round(done / total * cells)))
        return "[" + "#" * filled + "." * (cells - filled) + "]"
    period = 2 * (cells - 1)
    pos = (done - 1) % period
    pos = pos if pos < cells else period - pos
    return "[" + "." * pos + "#" + "." * (cells - pos - 1) + "]"


def _label(v: float) -> str:
    text = f"{v:.4g}"
    return text[:LABEL].rjust(LABEL)


def draw_curve(points: Sequence[float], rows: int, title: str, first_x: int, x_name: str = "mile") -> list[str]:
    """Draw `points` (the last few values of a metric, x from `first_x` on) as `rows` text rows plus a title
    and an x axis; one column per point: '/' rising to the next point, '\\' falling, '_' level, '|' fills
    steep steps. A constant curve is drawn as a level line with its value."""
    n = len(points)
    lines = [f"{'':>{LABEL}}  {title}"]
    if n == 0:
        return lines
    lo, hi = min(points), max(points)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        finite = [p for p in points if math.isfinite(p)]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
    flat = hi - lo <= 1e-9 * max(1.0, abs(hi), abs(lo))
    band = 0.0 if flat or rows < 2 else (hi - lo) / (rows - 1)
    levels = [(rows // 2 if band == 0 or not math.isfinite(p) else round((p - lo) / band)) for p in points]
    grid = [[" "] * n for _ in range(rows)]
    for i, level in enumerate(levels):
        nxt = levels[i + 1] if i + 1 < n else level
        if nxt > level:
            grid[level][i] = "/"
            for r in range(level + 1, nxt):
                grid[r][i] = "|"
        elif nxt < level:
            grid[level][i] = "\\"
            for r in range(nxt + 1, level):
                grid[r][i] = "|"
        else:
            grid[level][i] = "_"
    for r in range(rows - 1, -1, -1):
        value = lo + r * band if band else (lo if r == rows // 2 else None)
        label = _label(value) if value is not None and (band or r == rows // 2) else " " * LABEL
        lines.append(f"{label} |" + "".join(grid[r]))
    last = first_x + n - 1
    lines.append(" " * LABEL + " +" + "-" * n + f"> {x_name}")
    ticks = f"{first_x}".ljust(max(len(str(first_x)) + 1, n - len(str(last)))) + f"{last}" if n > 1 else f"{first_x}"
    lines.append(" " * (LABEL + 2) + ticks)
    return lines


def draw_compact(
    points: Sequence[float], rows: int, title: str, first_x: int, x_name: str = "mile", blocks: str = BLOCKS
) -> list[str]:
    """Draw `points` (x from `first_x` on) as exactly `rows` lines: one column per point, filled from the
    bottom to its value in eighths of a row (`blocks`: 9 glyphs, empty to full), the highest and lowest values
    labelling the top and bottom rows, the title right of the top row and the x range right of the bottom row.
    A constant curve fills half the height; non-finite points leave their column empty."""
    if len(blocks) != 9:
        raise ValueError(f"draw_compact: blocks must be 9 glyphs (empty to full), got {blocks!r}")
    n, rows = len(points), max(rows, 1)
    finite = [p for p in points if math.isfinite(p)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
    flat = hi - lo <= 1e-9 * max(1.0, abs(hi), abs(lo))
    eighths = rows * 8
    heights = [
        0 if not math.isfinite(p) else eighths // 2 if flat else 1 + round((p - lo) / (hi - lo) * (eighths - 1))
        for p in points
    ]
    last = first_x + max(n, 1) - 1
    lines = []
    for r in range(rows - 1, -1, -1):
        cells = "".join(blocks[min(8, max(0, h - r * 8))] for h in heights)
        if r == rows - 1:
            label, note = _label(hi), f"  {title}"
        elif r == 0:
            label, note = _label(lo), f"  {x_name} {first_x}-{last}" if n > 1 else f"  {x_name} {first_x}"
        else:
            label, note = " " * LABEL, ""
        if rows == 1:
            note = f"  {title}, {x_name} {first_x}-{last}"
        lines.append(f"{label} |{cells}{note}")
    return lines


def draw_image(value: np.ndarray, width: int = 128) -> list[str]:
    """Render a 2-D array (H <= 64, W <= 128; floats in [0, 1] or uint8) as text, every second row
    (characters are about twice as tall as wide), dark values as dense glyphs."""
    array = np.asarray(value)
    if array.ndim != 2 or array.shape[0] > 64 or array.shape[1] > width:
        raise ValueError(f"an 'image' metric must be a 2-D array of at most 64 x {width}, got shape {array.shape}")
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    elif np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32)
        if array.size and (np.nanmin(array) < 0 or np.nanmax(array) > 1):
            raise ValueError("an 'image' metric of floats must lie in [0, 1]")
    else:
        raise TypeError(f"an 'image' metric must be uint8 or floating, got {array.dtype}")
    idx = np.rint(np.nan_to_num(array[::2], nan=1.0) * (len(RAMP) - 1)).astype(int)
    return ["".join(RAMP[i] for i in row) for row in idx]
