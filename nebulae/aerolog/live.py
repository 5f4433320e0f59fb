"""The DashBoard's terminal display: a live block redrawn in place in a terminal (rich), plain lines elsewhere.

In a terminal, each open stage has a block (its progress line, then its metrics, wrapped to the terminal's
width, then an optional compact curve and an image) inside one `rich.live.Live`. While the block is shown,
stdout and stderr go through rich, so a user's `print()` lands above the block and stays in the scrollback;
so do `logging` records (handlers writing to the terminal's stdout or stderr are pointed through rich too).
An epoch's summary is printed above the block too; when the last open stage closes its epoch the block is
removed (no curve is left behind). The block is redrawn at most every `REDRAW` seconds (drawing costs about
a millisecond); the frames between are kept, not drawn, and the last one is drawn when the block ends at exit.
Elsewhere (a pipe, CI, a notebook, TERM=dumb) every display step appends
plain lines, and an epoch's summary follows its compact curve.

Only ready-made text reaches this module: the DashBoard converts the values on display steps.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from nebulae.aerolog import curve as _curve

__all__ = ["Frame", "Display", "clock", "rate", "interactive"]

_SEP = " | "
REDRAW = 0.1  # seconds: a terminal block is redrawn at most this often (a skipped frame shows at the next redraw)


def clock(seconds: float) -> str:
    """`h:mm:ss`, as rich's progress columns write it."""
    whole = max(0, round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def rate(per_mile: float) -> str:
    """Miles per second as `it/s`, or seconds per mile as `s/it` when a mile takes a second or more."""
    if per_mile >= 1:
        return f"{per_mile:.2f} s/it"
    if per_mile <= 0:
        return "- it/s"
    speed = 1 / per_mile
    return f"{speed:.2f} it/s" if speed < 100 else f"{speed:,.0f} it/s"


def interactive() -> bool:
    """Whether stdout is a terminal that can redraw in place (not a pipe, a notebook or TERM=dumb)."""
    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False
    return tty and os.environ.get("TERM", "").lower() not in ("dumb", "unknown")


@dataclass
class Frame:
    """What one display step of one stage shows (all text, already converted).

    Args:
        stage: the stage's name ("TRAIN").
        epoch: the epoch, counted from 0.
        done: miles done in this epoch.
        mpe: miles per epoch (<= 0: unknown, so no ETA and a bouncing bar).
        elapsed: seconds spent in this epoch so far.
        per_mile: recent seconds per mile (for the rate).
        shown: (name, text) of the metrics shown.
        curve: (points, first mile, title) of the curve's metric, or None.
        image: text rows of an image metric, or None.
    """

    stage: str
    epoch: int
    done: int
    mpe: int
    elapsed: float
    per_mile: float
    shown: list[tuple[str, str]] = field(default_factory=list)
    curve: tuple[Sequence[float], int, str] | None = None
    image: list[str] | None = None

    def items(self, bar: str) -> list[str]:
        count = f"{self.done}/{self.mpe}" if self.mpe > 0 else f"{self.done}"
        head = [f"{_curve.ordinal(self.epoch + 1)} Epoch", f"{count} Miles {bar}", rate(self.per_mile)]
        head.append(f"elapsed {clock(self.elapsed)}")
        if self.mpe > 0:
            head.append(f"ETA {clock(self.elapsed / max(self.done, 1) * max(self.mpe - self.done, 0))}")
        return [*head, self.stage] + [f"{n}: {t}" for n, t in self.shown]

    def line(self) -> str:
        """The plain line of a pipe."""
        return "| " + _SEP.join(self.items(_curve.draw_bar(self.done, self.mpe))) + " |"


def _unicode_ok(stream) -> bool:
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        "▁█━".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _pack(pieces: list, width: int) -> list:
    """rich Texts `| a | b | c |`, as many pieces a line as fit in `width` cells; a piece too long alone is cut."""
    from rich.text import Text

    lines, current = [], None
    for piece in pieces:
        if current is not None and current.cell_len + len(_SEP) + piece.cell_len + 2 <= width:
            current.append(_SEP)
            current.append_text(piece)
            continue
        if current is not None:
            lines.append(current.append(" |"))
        current = Text("| ")
        room = max(width - 4, 1)
        if piece.cell_len > room:
            piece = piece.copy()
            piece.truncate(room, overflow="ellipsis")
        current.append_text(piece)
    if current is not None:
        lines.append(current.append(" |"))
    return lines


class _Block:
    """One stage's live block, laid out at render time for the console's current width."""

    def __init__(self, frame: Frame, show_curve: bool, rows: int):
        self.frame, self.show_curve, self.rows = frame, show_curve, rows

    def __rich_console__(self, console, options):
        from rich.text import Text

        f, width, ascii_only = self.frame, options.max_width, options.ascii_only
        if f.mpe > 0:
            cells = 20
            filled = min(cells, max(0, round(f.done / f.mpe * cells)))
            full, empty = ("#", ".") if ascii_only else ("━", "━")
            bar = Text(full * filled, style="yellow") + Text(empty * (cells - filled), style="grey37")
        else:
            bar = Text(_curve.draw_bar(f.done, f.mpe), style="yellow")
        items = f.items("\0")
        pieces = []
        for k, item in enumerate(items):
            if "\0" in item:
                before, after = item.split("\0")
                pieces.append(Text(before) + bar + Text(after))
            elif k == len(items) - len(f.shown) - 1:
                pieces.append(Text(item, style="bold"))
            elif k >= len(items) - len(f.shown):
                name, value = f.shown[k - len(items) + len(f.shown)]
                pieces.append(Text(f"{name}: ") + Text(value, style="bold cyan"))
            else:
                pieces.append(Text(item))
        yield from _pack(pieces, width)
        if self.show_curve and f.curve is not None:
            points, first, title = f.curve
            blocks = _curve.ASCII_BLOCKS if ascii_only else _curve.BLOCKS
            for row in _curve.draw_compact(points, self.rows, title, first, blocks=blocks):
                yield Text(row, no_wrap=True, overflow="ellipsis")
        for row in f.image or ():
            yield Text(row, no_wrap=True, overflow="crop")


class Display:
    """Shows frames and epoch summaries: a rich live block in a terminal, appended plain lines elsewhere.

    Args:
        curve: draw the compact curve of each stage's first plotted metric.
        rows: the curve's rows.
    """

    def __init__(self, curve: bool = True, rows: int = 10):
        self.curve, self.rows = curve, rows
        self._blocks: dict[str, _Block] = {}
        self._live = None
        self._drawn_at = -math.inf
        self._exit_hooked = False
        self._rerouted: list[tuple[logging.StreamHandler, object]] = []

    # ---------------------------------------------------------------------------------- display steps

    def show(self, frame: Frame) -> None:
        """Display one step of `frame.stage`: redraw its block, or append its lines."""
        if not interactive():
            self.stop()
            lines = list(frame.image or ())
            lines.append(frame.line())
            _write(lines)
            return
        self._blocks[frame.stage] = _Block(frame, self.curve, self.rows)
        self._refresh(force=False)

    def summary(self, stage: str, lines: list[str], pieces: list[str], curve: tuple | None) -> None:
        """Print the epoch summary of `stage` (`lines`: its plain form; `pieces`: its parts, for wrapping) and
        remove the stage's block; `curve` (points, first mile, title) is drawn before it in appended output."""
        if not interactive():
            self.stop()
            out = []
            if self.curve and curve is not None:
                blocks = _curve.BLOCKS if _unicode_ok(sys.stdout) else _curve.ASCII_BLOCKS
                points, first, title = curve
                out += _curve.draw_compact(points, self.rows, title, first, blocks=blocks)
            _write(out + lines)
            return
        from rich.console import Console, Group
        from rich.text import Text

        self._blocks.pop(stage, None)
        if self._live is not None:
            self._live.update(Group(*self._blocks.values()), refresh=True)  # the stage's block is gone
            self._drawn_at = time.perf_counter()
            if not self._blocks:
                self.stop(keep=False)
        console = self._live.console if self._live is not None else Console(highlight=False)
        width = console.width
        if max(len(line) for line in lines) <= width:
            texts = [Text(line) for line in lines]
        else:
            texts = _pack([Text(p) for p in pieces], width)
            rule = Text("+" + "-" * (max(t.cell_len for t in texts) - 2) + "+")
            texts = [rule, *texts, rule]
        for text in texts:
            text.no_wrap = True
        console.print(Group(*texts))  # above the other stages' blocks, if any

    # ---------------------------------------------------------------------------------- the live block

    def _refresh(self, force: bool = True) -> None:
        from rich.console import Group

        group = Group(*self._blocks.values())
        now = time.perf_counter()
        if self._live is not None and not force and now - self._drawn_at < REDRAW:
            self._live.update(group)  # drawn by the next redraw, or at stop
            return
        self._drawn_at = now
        if self._live is None:
            from rich.console import Console
            from rich.live import Live

            console = Console(highlight=False)
            self._live = Live(
                group, console=console, auto_refresh=False, transient=True, redirect_stdout=True, redirect_stderr=True
            )
            real = {id(sys.stdout): "stdout", id(sys.stderr): "stderr"}
            self._live.start()
            for handler in _stream_handlers():
                name = real.get(id(handler.stream))
                if name is not None and getattr(sys, name) is not handler.stream:
                    self._rerouted.append((handler, handler.setStream(getattr(sys, name))))
            if not self._exit_hooked:
                atexit.register(self.stop)
                self._exit_hooked = True
        self._live.update(group, refresh=True)

    def stop(self, keep: bool = True) -> None:
        """End the live block (restoring stdout, stderr and the cursor); `keep` leaves its last drawing on screen."""
        live, self._live = self._live, None
        if live is None:
            return
        live.transient = not keep
        live.stop()
        self._blocks.clear()
        for handler, stream in self._rerouted:
            handler.setStream(stream)
        self._rerouted.clear()


def _stream_handlers() -> list[logging.StreamHandler]:
    """The `logging` handlers that write to a stream (not a file) of the root and every named logger."""
    loggers = [
        logging.getLogger(),
        *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)),
    ]
    return [
        h
        for lg in loggers
        for h in lg.handlers
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
    ]


def _write(lines: list[str]) -> None:
    out = sys.stdout
    out.write("\n".join(lines) + "\n")
    out.flush()
