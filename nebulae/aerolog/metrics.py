"""The long-format metrics file of a DashBoard run: one CSV, every stage and metric, one value a row.

Columns: `run, stage, epoch, mile, metric, value` (like Keras' CSVLogger or Lightning's metrics.csv, but
long: a new metric or stage adds rows, never columns). A row with a `mile` is one mile's value as given
to `gauge` (`mile` is the stage's global mile, counting from 1; `epoch` the epoch given to `gauge`,
counting from 0); a row with an empty `mile` is the mean of `metric` over that finished `epoch`. Rows
are appended as the run goes (every `SPILL` per-mile rows of a metric, and at `DashBoard.log()`), so
the file is not sorted; read it with `read` or `pandas.read_csv` (an empty mile reads as NaN).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["COLUMNS", "FILE", "MetricsLog", "Row", "read"]

FILE = "metrics.csv"
COLUMNS = ("run", "stage", "epoch", "mile", "metric", "value")


class Row(NamedTuple):
    """One row of the metrics file; `mile` is None on an epoch-mean row."""

    run: str
    stage: str
    epoch: int
    mile: int | None
    metric: str
    value: float


class MetricsLog:
    """Appends a run's rows to its metrics file: the first write of this log truncates the file and writes
    the header (a board's file holds that board's run only), later writes append.

    Args:
        path: the CSV file (its folder is created on the first write).
        run: the run's name, written in the `run` column.
    """

    def __init__(self, path: str | os.PathLike, run: str):
        self.path = Path(path)
        self.run = run
        self.begun = False
        self._epochs_written: dict[tuple[str, str], int] = {}  # epoch-mean rows already in the file

    def _append(self, rows: Iterable[tuple]) -> None:
        if not self.begun:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a" if self.begun else "w", newline="") as f:
            writer = csv.writer(f)
            if not self.begun:
                writer.writerow(COLUMNS)
                self.begun = True
            writer.writerows(rows)

    def miles(self, stage: str, metric: str, epochs: Sequence[int], miles: Sequence[int], values: Sequence[float]):
        """Append per-mile rows: `epochs[i]`, `miles[i]`, `values[i]` of `metric` in `stage`."""
        run = self.run
        self._append((run, stage, e, m, metric, v) for e, m, v in zip(epochs, miles, values))

    def epochs(self, stage: str, metric: str, epochs: Sequence[int], means: Sequence[float]) -> None:
        """Append the epoch-mean rows of `metric` in `stage` not appended before (`epochs`, `means`: every
        finished epoch so far, in order)."""
        done = self._epochs_written.get((stage, metric), 0)
        if len(epochs) > done:
            run = self.run
            self._append((run, stage, e, "", metric, v) for e, v in zip(epochs[done:], means[done:]))
        self._epochs_written[(stage, metric)] = len(epochs)

    def every_row(self, series: Mapping[tuple[str, str], Any]) -> Iterator[Row]:
        """Every per-mile row of the run (those in the file, then those still held by `series`' metrics),
        then every finished epoch's mean, streamed.

        Args:
            series: (stage, metric name) -> a DashBoard metric (`rows`: held miles, values, epochs; `epochs`
                and `epoch_means`: the finished epochs).
        """
        if self.begun:
            yield from (row for row in read(self.path) if row.mile is not None)
        for (stage, name), m in series.items():
            miles, values, epochs = m.rows
            yield from (Row(self.run, stage, e, mi, name, v) for e, mi, v in zip(epochs, miles, values))
        for (stage, name), m in series.items():
            yield from (Row(self.run, stage, e, None, name, v) for e, v in zip(m.epochs, m.epoch_means))


def read(path: str | os.PathLike) -> Iterator[Row]:
    """Yield the rows of a metrics file, typed (streamed: the file may be large).

    Args:
        path: a metrics file written by `MetricsLog` (`<log_path>/metrics.csv` of a DashBoard).
    """
    with Path(path).open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(header) != COLUMNS:
            raise ValueError(f"{path}: not a DashBoard metrics file (header {header}, expected {list(COLUMNS)})")
        for run, stage, epoch, mile, metric, value in reader:
            yield Row(run, stage, int(epoch), int(mile) if mile else None, metric, float(value))
