"""DashBoard per-mile cost against history length: it must stay flat from 1e3 to 1e5 miles (O(1) per mile).

    PYTHONPATH=. python benchmarks/dashboard.py [--quick] [--interval N]

One run gauges three metrics (a NumPy float32, a Python float, a percent) for 100,000 miles, 1,000
miles per epoch, moving-average window 10, a display every `--interval` miles (default 10) into a
throw-away stream that is not a terminal (the pipe path), epoch summaries included. Reported: the
wall time per mile, in microseconds, of the 1,000 miles that end at mile 1e3, 1e4 and 1e5 (the
cost of a mile once that much history exists), median over 3 runs (`--quick`: 1 run).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time

import numpy as np

from nebulae.aerolog import DashBoard


class _Sink(io.TextIOBase):
    """A stdout that forgets what it is given and is not a terminal (the pipe path)."""

    def write(self, s: str) -> int:
        return len(s)

    def isatty(self) -> bool:
        return False


WINDOW = 1_000
MARKS = (1_000, 10_000, 100_000)


def run(interval: int, log_dir: str) -> dict[int, float]:
    """One 1e5-mile run: {mark: microseconds per mile over the WINDOW miles ending at mark}."""
    db = DashBoard(log_dir, window=10, divisor=10, span=30, format={"acc": (".2f", "percent")})
    losses = np.random.default_rng(0).random(1000).astype(np.float32)
    mpe = 1000
    out = {}
    with contextlib.redirect_stdout(_Sink()):
        for i in range(MARKS[-1]):
            if (i + WINDOW) in MARKS:
                start = time.perf_counter()
            epoch, mile = divmod(i, mpe)
            db.gauge({"loss": losses[mile], "lr": 0.1, "acc": 0.5}, mile, epoch, mpe, "TRAIN", interval=interval)
            if i + 1 in MARKS:
                out[i + 1] = (time.perf_counter() - start) / WINDOW * 1e6
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one run instead of three")
    parser.add_argument("--interval", type=int, default=10, help="display every this many miles")
    args = parser.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory() as log_dir:
        for _ in range(1 if args.quick else 3):
            runs.append(run(args.interval, log_dir))
    print(f"DashBoard.gauge, 3 metrics, display every {args.interval} miles, median of {len(runs)} run(s):")
    median = {m: statistics.median(r[m] for r in runs) for m in MARKS}
    for m in MARKS:
        print(f"  mile {m:>7,}: {median[m]:7.2f} us/mile")
    print(f"  ratio 1e5 / 1e3: {median[MARKS[-1]] / median[MARKS[0]]:.2f} (flat means about 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
