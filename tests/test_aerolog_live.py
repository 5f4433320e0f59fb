"""aerolog.DashBoard's live display in a real pseudo-terminal of a fixed size, and in a pipe.

A child interpreter gauges a few epochs (values: device scalars of the engine of this pass) and prints
`USER-LINE-n` between gauges. The pty's byte stream is replayed through a small terminal emulator
(`Screen`: cursor moves, erases, line wrap, scrolling into a scrollback), so the assertions are about what a
user sees on the screen and in the scrollback at the end, not about escape codes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT, run_in_pty

CHILD = textwrap.dedent(
    """
    import logging
    import sys
    import numpy as np
    from nebulae.aerolog import DashBoard
    from nebulae.astro import dock

    logging.basicConfig(level=logging.INFO, format="%(message)s")  # a handler holding the real stderr
    names = sys.argv[2].split(",")
    curve = sys.argv[3] == "curve"
    db = DashBoard(sys.argv[1], window=2, divisor=3, span=10, curve=curve, format={names[1]: (".1f", "percent")})
    n = 0
    for epoch in range(3):
        for mile in range(6):
            if epoch == 2 and mile == 3:
                break  # the last epoch is left running: its block stays on screen at exit
            entry = {name: dock.coat(np.float32(6 - mile + k)) for k, name in enumerate(names)}
            entry[names[1]] = 0.1 * mile
            db.gauge(entry, mile, epoch, 6, "TRAIN", interval=1, duration=0.5)
            if mile in (1, 4):
                print(f"USER-LINE-{n}", flush=True)
                logging.info(f"USER-LOG-{n}")
                n += 1
        if epoch < 2:
            db.gauge({names[0]: 1.0}, 0, epoch, 1, "DEV", duration=0.25)
    print("USER-COUNT", n)
    """
)
SHORT = ["loss", "acc", "lr"]
LONG = ["reconstruction_loss", "top1_accuracy", "kl_divergence_term", "gradient_norm", "learning_rate", "tokens_seen"]


class Screen:
    """A terminal of `rows` x `cols` that keeps the lines scrolled off its top (enough of VT100/xterm for
    rich and for plain output: printable text with autowrap, CR, LF, BS, cursor moves and positioning,
    erase in line / display; colours and modes are ignored)."""

    CSI = re.compile(r"\x1b\[([?0-9;]*)([A-Za-z@`])")
    OTHER = re.compile(r"\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]")

    def __init__(self, rows: int, cols: int):
        self.rows, self.cols = rows, cols
        self.grid = [[" "] * cols for _ in range(rows)]
        self.scrollback: list[str] = []
        self.y = self.x = 0
        self.wrap_next = False

    def _line_feed(self) -> None:
        if self.y == self.rows - 1:
            self.scrollback.append("".join(self.grid.pop(0)).rstrip())
            self.grid.append([" "] * self.cols)
        else:
            self.y += 1

    def _put(self, ch: str) -> None:
        if self.wrap_next:
            self.x, self.wrap_next = 0, False
            self._line_feed()
        self.grid[self.y][self.x] = ch
        if self.x == self.cols - 1:
            self.wrap_next = True
        else:
            self.x += 1

    def _csi(self, params: str, final: str) -> None:
        if params.startswith("?"):
            return  # private modes (cursor visibility, ...)
        args = [int(a) if a else 0 for a in params.split(";")] if params else []
        n = max(args[0], 1) if args else 1
        self.wrap_next = False
        if final == "A":
            self.y = max(0, self.y - n)
        elif final == "B":
            self.y = min(self.rows - 1, self.y + n)
        elif final == "C":
            self.x = min(self.cols - 1, self.x + n)
        elif final == "D":
            self.x = max(0, self.x - n)
        elif final == "G":
            self.x = min(self.cols - 1, n - 1)
        elif final in "Hf":
            self.y = min(self.rows - 1, (args[0] if args else 1) - 1 if args and args[0] else 0)
            self.x = min(self.cols - 1, (args[1] - 1) if len(args) > 1 and args[1] else 0)
        elif final == "K":
            mode = args[0] if args else 0
            row = self.grid[self.y]
            span = {0: range(self.x, self.cols), 1: range(0, self.x + 1), 2: range(self.cols)}[mode]
            for i in span:
                row[i] = " "
        elif final == "J":
            mode = args[0] if args else 0
            if mode == 0:
                self._csi("", "K")
                for r in range(self.y + 1, self.rows):
                    self.grid[r] = [" "] * self.cols
            elif mode in (2, 3):
                self.grid = [[" "] * self.cols for _ in range(self.rows)]
        elif final == "m":
            pass
        else:
            raise AssertionError(f"Screen: an escape sequence it does not know: ESC[{params}{final}")

    def feed(self, text: str) -> Screen:
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "\x1b":
                m = self.CSI.match(text, i) or self.OTHER.match(text, i)
                assert m is not None, f"Screen: an escape sequence it cannot parse: {text[i : i + 12]!r}"
                if m.re is self.CSI:
                    self._csi(m.group(1), m.group(2))
                i = m.end()
                continue
            if ch == "\r":
                self.x, self.wrap_next = 0, False
            elif ch == "\n":
                self.wrap_next = False
                self._line_feed()
            elif ch == "\b":
                self.x, self.wrap_next = max(0, self.x - 1), False
            elif ch == "\t":
                self.x = min(self.cols - 1, (self.x // 8 + 1) * 8)
            elif ch >= " ":
                self._put(ch)
            i += 1
        return self

    def lines(self) -> list[str]:
        """The scrollback, then the screen, trailing blank lines dropped."""
        lines = self.scrollback + ["".join(row).rstrip() for row in self.grid]
        while lines and not lines[-1]:
            lines.pop()
        return lines


def _env(engine: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "RANK", "NEB_RANK", "NO_COLOR")}
    env.update(PYTHONPATH=str(ROOT), NEB_CORE=engine, TERM="xterm-256color")
    return env


def _run_in_pty(args: list[str], engine: str, rows: int, cols: int) -> str:
    """Run the child with a pseudo-terminal of `rows` x `cols` as its stdout and stderr; return what it received."""
    return run_in_pty(CHILD, args, _env(engine), (rows, cols))


def _check_user_lines(lines: list[str], logs: bool = True) -> None:
    users = [line for line in lines if line.startswith("USER-")]
    want = [line for n in range(5) for line in (f"USER-LINE-{n}", f"USER-LOG-{n}")[: 2 if logs else 1]]
    assert users == [*want, "USER-COUNT 5"], "\n".join(lines)


def test_user_prints_survive_the_live_block(tmp_path, engine):
    rows, cols = 24, 100
    raw = _run_in_pty([str(tmp_path / "logs"), ",".join(SHORT), "curve"], engine, rows, cols)
    assert "\x1b[" in raw  # redrawn in place, not appended
    lines = Screen(rows, cols).feed(raw).lines()
    text = "\n".join(lines)
    _check_user_lines(lines)  # every print, once, in order, in the scrollback or on screen
    # the epoch summaries (TRAIN and DEV, epochs 1 and 2) stay above, each once
    assert sum(line.startswith("| 1st Epoch | 6 Miles | 3 s/epoch | TRAIN | loss: 3.5 |") for line in lines) == 1
    assert sum(line.startswith("| 2nd Epoch | 6 Miles | 3 s/epoch | TRAIN |") for line in lines) == 1
    assert sum(line.startswith("| 2nd Epoch | 1 Miles | 250 ms/epoch | DEV | loss: 1 |") for line in lines) == 1
    # one live block at the end (the running 3rd epoch), none left behind by the finished epochs
    assert text.count("TRAIN:loss") == 1, text
    assert text.count("3rd Epoch") == 1, text
    start = next(i for i, line in enumerate(lines) if "3rd Epoch" in line)
    block = " ".join(lines[start:-3])  # the progress and metric lines, then the 3-row curve
    assert re.search(
        r"\| 3rd Epoch \| 3/6 Miles .* \| 2\.00 it/s \| elapsed 0:00:0\d \| ETA 0:00:0\d \| TRAIN \|", block
    )
    assert "loss: 4 | acc: 20.0% | lr: 6 |" in block
    assert lines[-3].endswith("TRAIN:loss") and lines[-1].endswith("mile 6-15") and "|" in lines[-2]
    assert all(len(line) <= cols for line in lines)


def test_narrow_terminal_wraps_metrics(tmp_path, engine):
    rows, cols = 30, 60
    raw = _run_in_pty([str(tmp_path / "logs"), ",".join(LONG), "no-curve"], engine, rows, cols)
    lines = Screen(rows, cols).feed(raw).lines()
    text = "\n".join(lines)
    _check_user_lines(lines)
    assert all(len(line) <= cols for line in lines)
    start = max(i for i, line in enumerate(lines) if "3rd Epoch" in line)
    block = "\n".join(lines[start:])
    assert "ETA 0:00:0" in block and "it/s" in block
    for k, name in enumerate(LONG):  # every metric of the running block, name and value, none cut off
        value = "20.0%" if k == 1 else f"{4 + k:g}"
        assert f"{name}: {value}" in block, block
    assert len(lines) - start >= 3  # wrapped onto further lines
    assert "TRAIN:" not in text  # curve=False: no curve
    first = lines.index("| 2nd Epoch | 6 Miles | 3 s/epoch | TRAIN |")  # the summary, wrapped between rules
    last = next(i for i in range(first, len(lines)) if lines[i].startswith("+--"))
    assert lines[first - 1].startswith("+--") and last - first >= 3
    summary = " ".join(lines[first:last])
    for k, name in enumerate(LONG):  # the epoch means: values 6 - mile + k over miles 0..5
        assert f"| {name}: {'25.0%' if k == 1 else f'{3.5 + k:g}'} |" in summary, summary


def test_pipe_appends_plain_lines(tmp_path, engine):
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "logs"), ",".join(SHORT), "curve"],
        env={**_env(engine), "COLUMNS": "60"},
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\r" not in out.stdout  # no cursor codes, no colours
    lines = out.stdout.splitlines()
    _check_user_lines(lines, logs=False)
    logs = [line for line in out.stderr.splitlines() if line.startswith("USER-")]  # JAX logs at INFO too
    assert logs == [f"USER-LOG-{n}" for n in range(5)]
    progress = [line for line in lines if "Miles [" in line and "TRAIN" in line]
    assert len(progress) == 6 + 6 + 3  # one appended line per display step
    assert progress[2].startswith("| 1st Epoch | 3/6 Miles [##########..........] | 2.00 it/s | elapsed 0:00:0")
    assert all(re.search(r"\| ETA \d:\d\d:\d\d \|", line) for line in progress)
    assert "| TRAIN | loss: 4 | acc: 20.0% | lr: 6 |" in progress[2]  # a whole line however narrow the reader
    # in order: the line after mile 2 (index 1), then the user's print
    assert lines.index("USER-LINE-0") == lines.index(progress[1]) + 1
    curves = [i for i, line in enumerate(lines) if line.endswith("TRAIN:loss")]
    assert len(curves) == 2  # one compact curve (3 rows) above each finished TRAIN epoch's summary
    assert all(lines[i + 3].startswith("+---") and "1st Epoch | 6 Miles" in lines[curves[0] + 4] for i in curves)


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_curve_argument_is_checked(tmp_path, bad):
    from nebulae.aerolog import DashBoard

    with pytest.raises(ValueError, match="curve must be True or False"):
        DashBoard(tmp_path, curve=bad)
