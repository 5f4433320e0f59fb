"""DashBoard: a live progress line, metrics and a terminal curve during training; PNG curves and CSV logs after.

Per mile (`gauge` call) the board only appends each metric's value, as given, to a pending list:
no conversion, so a device scalar (a torch tensor or a JAX array) is not synchronised. Display
steps (every `interval` miles, and the last mile of an epoch) convert the pending values in one go
and fold them into running sums: a moving-average ring of `window` values, the epoch sum, and the
last `span` averages for the curve. Every step is O(1) amortised, whatever the history length, and the
memory is bounded: the per-mile rows (epoch, mile, value) are buffered up to `SPILL` rows per metric,
then appended to the run's one long-format metrics file (`metrics.csv` under `log_path`, every stage and
metric: `nebulae.aerolog.metrics`; rank 0, other ranks drop them); the PNG curves are drawn from at most
`2 * PLOTTED` points (bucket means whose size doubles as the run grows; every point while the run is
shorter); epoch means are one number per epoch.
Only rank 0 prints and writes files (`nebulae.kit.rank`); every rank records, so `read` works on all.
"""

from __future__ import annotations

import csv
import math
import os
import time
from array import array
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nebulae import law
from nebulae.aerolog import curve as _curve
from nebulae.aerolog import live as _live
from nebulae.aerolog import metrics as _metrics
from nebulae.kit.rank import rank

__all__ = ["DashBoard", "FORMATS"]

FORMATS = ("raw", "percent", "tailor", "inviz", "image")
_RECORDED = ("raw", "percent", "inviz")
_SHOWN_IN_CURVE = ("raw", "percent")
SPILL = 4096  # per-mile rows a metric holds before appending them to the metrics file
PLOTTED = 4096  # a metric's PNG curve keeps between PLOTTED and 2 * PLOTTED points once it has that many


def _to_float(value: Any) -> float:
    """A Python float from a Python number, a NumPy scalar or one-element array, or a device scalar."""
    kind = type(value)
    if kind is float or kind is int or kind is bool:
        return float(value)
    if isinstance(value, (np.generic, np.ndarray)):
        array = np.asarray(value)
    else:
        bound = law.bound_backend()
        shelled = bound.tensor.shell(value) if bound is not None else value
        array = np.asarray(shelled)
    if array.size != 1:
        raise ValueError(f"a DashBoard metric must be a scalar, got shape {array.shape}")
    return float(array.reshape(()))


def _to_array(value: Any) -> np.ndarray:
    if isinstance(value, (np.generic, np.ndarray)):
        return np.asarray(value)
    bound = law.bound_backend()
    return np.asarray(bound.tensor.shell(value) if bound is not None else value)


def _scalar_like(value: Any) -> bool:
    if isinstance(value, (str, bytes)):
        return False
    if isinstance(value, (int, float, np.generic)):
        return True
    shape = getattr(value, "shape", None)
    return shape is not None and int(np.prod(tuple(shape))) == 1


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "-" for c in name)


def _per(seconds: float, unit: str) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} us/{unit}"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms/{unit}"
    return f"{seconds:.3g} s/{unit}"


class _Plotted:
    """A bounded series for the PNG curve: every point up to 2 * PLOTTED, then means of buckets of `stride`
    points (the stride doubles, pairs of buckets merging, each time 2 * PLOTTED buckets are full)."""

    __slots__ = ("miles", "values", "averages", "stride", "part")

    def __init__(self):
        self.miles, self.values, self.averages = array("q"), array("d"), array("d")
        self.stride = 1
        self.part = [0, 0.0, 0.0, 0]  # the open bucket: last mile, value sum, average sum, count

    def add(self, mile: int, value: float, average: float) -> None:
        part = self.part
        part[0], part[1], part[2], part[3] = mile, part[1] + value, part[2] + average, part[3] + 1
        if part[3] < self.stride:
            return
        self.miles.append(mile), self.values.append(part[1] / part[3]), self.averages.append(part[2] / part[3])
        self.part = [0, 0.0, 0.0, 0]
        if len(self.miles) >= 2 * PLOTTED:
            self.miles = array("q", self.miles[1::2])
            self.values = array("d", ((a + b) / 2 for a, b in zip(self.values[::2], self.values[1::2])))
            self.averages = array("d", ((a + b) / 2 for a, b in zip(self.averages[::2], self.averages[1::2])))
            self.stride *= 2

    def series(self) -> tuple[array, array, array]:
        """(miles, values, averages), the open bucket included."""
        miles, values, averages = array("q", self.miles), array("d", self.values), array("d", self.averages)
        last, vsum, asum, n = self.part
        if n:
            miles.append(last), values.append(vsum / n), averages.append(asum / n)
        return miles, values, averages


class _Metric:
    """One "STAGE:name": pending raw values, the moving-average ring, the epoch sum and the bounded histories."""

    __slots__ = (
        "name", "kind", "form", "recorded", "pending", "pending_miles", "ring", "ring_pos", "ring_n", "ring_sum",
        "recent", "rows", "plotted", "last_mile", "spill", "miles", "values", "averages", "epoch_sum", "epoch_n",
        "epochs", "epoch_means", "latest", "stage",
    )  # fmt: skip

    def __init__(
        self, name: str, kind: str, form: Any, recorded: bool, window: int, span: int, spill: Callable | None = None
    ):
        self.name, self.kind, self.form, self.recorded = name, kind, form, recorded
        self.pending: list = []
        self.pending_miles: list[int] = []
        self.ring = [0.0] * window
        self.ring_pos = self.ring_n = 0
        self.ring_sum = 0.0
        self.recent: deque[float] = deque(maxlen=span)  # last `span` moving averages, for the terminal curve
        self.rows = (array("q"), array("d"), array("q"))  # (mile, value, epoch) not yet in the metrics file
        self.stage: Any = None  # its _Stage, whose open epoch is the epoch of every pending value
        self.plotted = _Plotted()
        self.last_mile = 0
        self.spill = spill  # takes the rows when SPILL of them are held (and at log())
        self.miles = self.values = self.averages = None  # the plotted series, set by `plot_series` for log()
        self.epoch_sum, self.epoch_n = 0.0, 0
        self.epochs: list[int] = []
        self.epoch_means: list[float] = []
        self.latest: Any = None  # the last value given (raw object; converted only for display)

    def fold(self) -> None:
        """Convert the pending values and fold them into the ring, the epoch sum and the histories."""
        if not self.pending:
            return
        ring, window = self.ring, len(self.ring)
        for mile, raw in zip(self.pending_miles, self.pending):
            v = _to_float(raw)
            pos = self.ring_pos
            self.ring_sum += v - ring[pos]
            ring[pos] = v
            self.ring_pos = pos = (pos + 1) % window
            if pos == 0:
                self.ring_sum = math.fsum(ring)  # no drift of the running sum over long runs
            if self.ring_n < window:
                self.ring_n += 1
            average = self.ring_sum / self.ring_n
            self.recent.append(average)
            miles, values, epochs = self.rows
            miles.append(mile), values.append(v), epochs.append(self.stage.epoch)
            self.plotted.add(mile, v, average)
            self.last_mile = mile
            if len(miles) >= SPILL:
                self.flush()
            self.epoch_sum += v
            self.epoch_n += 1
        self.pending.clear()
        self.pending_miles.clear()

    def flush(self) -> None:
        """Hand the held rows to the spill (the metrics file on rank 0) and empty them."""
        if self.spill is not None and self.rows[0]:
            self.spill(self)
        self.rows = (array("q"), array("d"), array("q"))

    def plot_series(self) -> None:
        """Set `miles`, `values`, `averages` to the (bounded) plotted series, for the PNG curves."""
        self.miles, self.values, self.averages = self.plotted.series()

    def running_mean(self) -> float:
        self.fold()
        return self.epoch_sum / self.epoch_n if self.epoch_n else math.nan


class _Stage:
    """Per-stage progress: the open epoch, its miles and time, and the metrics seen in this stage."""

    __slots__ = ("name", "epoch", "open", "miles", "seconds", "shown_seconds", "shown_miles", "counter", "metrics")

    def __init__(self, name: str):
        self.name = name
        self.epoch: int | None = None
        self.open = False
        self.miles = 0
        self.seconds = 0.0
        self.shown_seconds = 0.0
        self.shown_miles = 0
        self.counter = 0  # global mile of the last call
        self.metrics: dict[str, _Metric] = {}


class DashBoard:
    """Monitor training: `gauge(...)` after every mile, `log()` at the end, `read()` for epoch means.

    `format` maps a metric name to `(form, type)`: 'raw' (form: a format spec such as '.3f'),
    'percent' (value x 100 with that spec, then '%'), 'tailor' (form: a callable value -> text; numeric
    values are also recorded), 'inviz' (recorded, never shown; form ignored), 'image' (a 2-D array
    drawn as text above the progress line; not recorded). Names not in `format` are 'raw' with '.4g'.
    `window` is the moving-average length of the curves, `divisor` the curve's rows, `span` its columns;
    `curve=False` hides the terminal curve. The display: `nebulae.aerolog.live`.
    """

    def __init__(
        self,
        log_path: str | os.PathLike = "./aerolog",
        window: int = 1,
        divisor: int = 10,
        span: int = 30,
        format: Mapping[str, tuple] | None = None,  # noqa: A002 (the brochure's name)
        curve: bool = True,
    ):
        for name, value, least in (("window", window, 1), ("divisor", divisor, 2), ("span", span, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"DashBoard: {name} must be an integer >= {least}, got {value!r}")
        if not isinstance(curve, bool):
            raise ValueError(f"DashBoard: curve must be True or False, got {curve!r}")
        self.log_path = Path(log_path)
        self.window, self.divisor, self.span = window, divisor, span
        self.format = {name: self._check_format(name, spec) for name, spec in (format or {}).items()}
        self.run_id = time.strftime("%Y-%m-%dT%H:%M:%S") + f"-{os.getpid()}"
        self._stages: dict[str, _Stage] = {}
        self._last_call = time.perf_counter()
        self._view = _live.Display(curve, divisor)
        self._metrics = _metrics.MetricsLog(self.log_path / _metrics.FILE, self.run_id)  # the run's long-format CSV

    @staticmethod
    def _check_format(name: str, spec) -> tuple[Any, str]:
        if not isinstance(spec, (tuple, list)) or len(spec) != 2:
            raise ValueError(f"DashBoard format[{name!r}] must be (form, type), got {spec!r}")
        form, kind = spec
        if kind not in FORMATS:
            raise ValueError(f"DashBoard format[{name!r}]: type {kind!r} is not one of {', '.join(FORMATS)}")
        if kind in ("raw", "percent"):
            form = str(form or ".4g").lstrip("%")
            try:
                format(1.0, form)
            except (ValueError, TypeError):
                raise ValueError(f"DashBoard format[{name!r}]: {form!r} is not a format spec like '.3f'") from None
        elif kind == "tailor" and not callable(form):
            raise ValueError(f"DashBoard format[{name!r}]: 'tailor' needs a callable returning text, got {form!r}")
        return form, kind

    # ------------------------------------------------------------------------------------------ per mile

    def gauge(
        self,
        entry: Mapping[str, Any],
        mile: int,
        epoch: int,
        mpe: int,
        stage: str = "TRAIN",
        interval: int = 1,
        duration: float | None = None,
    ) -> None:
        """Record this mile's metrics (`mile` and `epoch` count from 0; `mpe` miles per epoch, <= 0 when
        unknown); every `interval` miles and at the last mile of an epoch, display them. `duration` is the
        mile's time in seconds (default: the time since the previous gauge call of any stage)."""
        now = time.perf_counter()
        seconds = now - self._last_call if duration is None else float(duration)
        self._last_call = now
        if interval < 1:
            raise ValueError(f"DashBoard.gauge: interval must be >= 1, got {interval!r}")
        st = self._stages.get(stage)
        if st is None:
            st = self._stages[stage] = _Stage(stage)
        if st.open and epoch != st.epoch:
            self._close_epoch(st)  # the previous epoch ended without its last mile (or its length is unknown)
        if not st.open:
            st.epoch, st.open, st.miles, st.seconds = epoch, True, 0, 0.0
        st.miles += 1
        st.seconds += seconds
        st.shown_seconds += seconds
        st.shown_miles += 1
        st.counter = gm = epoch * mpe + mile + 1 if mpe > 0 else st.counter + 1
        metrics = st.metrics
        for name, value in entry.items():
            m = metrics.get(name)
            if m is None:
                m = metrics[name] = self._new_metric(name, value, stage)
            if m.recorded:
                m.pending.append(value)
                m.pending_miles.append(gm)
            m.latest = value
        last = mpe > 0 and mile + 1 >= mpe
        if last or (mile + 1) % interval == 0:
            self._display(st, entry, mile, mpe)
        if last:
            self._close_epoch(st)

    def _new_metric(self, name: str, value: Any, stage: str) -> _Metric:
        form, kind = self.format.get(name, (".4g", "raw"))
        recorded = kind in _RECORDED or (kind == "tailor" and _scalar_like(value))
        m = _Metric(name, kind, form, recorded, self.window, self.span, self._spill)
        m.stage = self._stages[stage]
        return m

    def _spill(self, m: _Metric) -> None:
        """Append a metric's held per-mile rows to the run's metrics file (begun by this board's first write)."""
        if rank() != 0:
            return  # only rank 0 writes files
        miles, values, epochs = m.rows
        self._metrics.miles(m.stage.name, m.name, epochs, miles, values)

    def end_epoch(self, stage: str) -> None:
        """Close the open epoch of `stage` (for `mpe <= 0`: its last mile is known only to the caller)."""
        st = self._stages.get(stage)
        if st is not None and st.open:
            self._close_epoch(st)

    # ------------------------------------------------------------------------------------------ display

    def _text(self, m: _Metric, value: Any) -> str | None:
        if m.kind == "raw":
            return format(_to_float(value), m.form)
        if m.kind == "percent":
            return format(_to_float(value) * 100, m.form) + "%"
        if m.kind == "tailor":
            return str(m.form(_to_float(value) if _scalar_like(value) else value))
        return None

    def _display(self, st: _Stage, entry: Mapping[str, Any], mile: int, mpe: int) -> None:
        shown, image, plotted = [], None, None
        for name in entry:
            m = st.metrics[name]
            m.fold()
            if m.kind == "image":
                image = _curve.draw_image(_to_array(m.latest))
                continue
            text = self._text(m, m.latest)
            if text is not None:
                shown.append((name, text))
            if plotted is None and m.kind in _SHOWN_IN_CURVE:
                plotted = m
        per_mile = st.shown_seconds / st.shown_miles
        st.shown_seconds, st.shown_miles = 0.0, 0
        if rank() != 0:
            return
        frame = _live.Frame(st.name, st.epoch, mile + 1, mpe, st.seconds, per_mile, shown, None, image)
        if plotted is not None and plotted.recent:
            first = plotted.last_mile - len(plotted.recent) + 1
            frame.curve = (list(plotted.recent), first, f"{st.name}:{plotted.name}")
        self._view.show(frame)

    def _close_epoch(self, st: _Stage) -> None:
        st.open = False
        summary = []
        for m in st.metrics.values():
            if not m.recorded:
                continue
            mean = m.running_mean()
            m.epochs.append(st.epoch)
            m.epoch_means.append(mean)
            m.epoch_sum, m.epoch_n = 0.0, 0
            text = self._text(m, mean)
            if text is not None:
                summary.append((m.name, text))
        st.shown_seconds, st.shown_miles = 0.0, 0
        if rank() != 0:
            return
        pieces = [f"{_curve.ordinal(st.epoch + 1)} Epoch", f"{st.miles} Miles", _per(st.seconds, "epoch"), st.name]
        pieces += [f"{n}: {t}" for n, t in summary]
        line = "| " + " | ".join(pieces) + " |"
        rule = "+" + "-" * (len(line) - 2) + "+"
        plotted = next((m for m in st.metrics.values() if m.kind in _SHOWN_IN_CURVE and m.recent), None)
        curve = None
        if plotted is not None:  # drawn above the summary in appended output (a pipe), not in a terminal
            first = plotted.last_mile - len(plotted.recent) + 1
            curve = (list(plotted.recent), first, f"{st.name}:{plotted.name}")
        self._view.summary(st.name, [rule, line, rule], pieces, curve)

    # ------------------------------------------------------------------------------------------ results

    def _metric(self, entry: str, stage: str) -> _Metric:
        st = self._stages.get(stage)
        if st is None:
            raise KeyError(f"DashBoard: no stage {stage!r}; stages seen: {sorted(self._stages)}")
        m = st.metrics.get(entry)
        if m is None or not m.recorded:
            known = sorted(k for k, v in st.metrics.items() if v.recorded)
            raise KeyError(f"DashBoard: no recorded metric {entry!r} in stage {stage!r}; recorded: {known}")
        return m

    def read(self, entry: str, stage: str, epoch: int = -1) -> float:
        """The mean of `entry` over epoch `epoch` of `stage` (the epoch number given to `gauge`; negative
        counts back from the latest, -1 being the latest, finished or not: a running epoch gives its mean so far)."""
        m = self._metric(entry, stage)
        st = self._stages[stage]
        epochs, means = list(m.epochs), list(m.epoch_means)
        if st.open:
            epochs.append(st.epoch)
            means.append(m.running_mean())
        if epoch < 0:
            if -epoch > len(means):
                raise IndexError(f"DashBoard.read: {stage}:{entry} has {len(means)} epochs, asked for {epoch}")
            return means[epoch]
        if epoch not in epochs:
            raise IndexError(f"DashBoard.read: {stage}:{entry} has no epoch {epoch}; epochs: {epochs}")
        return means[len(epochs) - 1 - epochs[::-1].index(epoch)]

    def log(
        self,
        gauge: bool = True,
        tachograph: bool = True,
        record: str | os.PathLike | None = None,
        tensorboard: bool = False,
        inviz: bool = False,
    ) -> list[Path]:
        """Write the logs under `log_path` (created with its parents) and return the files written.

        Args:
            gauge: PNG curves: per metric and stage (`<metric>_<STAGE>_mile.png`: values and moving average)
                and per metric over stages (`<metric>_epoch.png`: epoch means); a stage has the same colour
                in every plot, epochs are numbered as in `gauge` and the metrics file, 'percent' metrics
                are drawn in percent.
            tachograph: the run's metrics file, `metrics.csv` (run, stage, epoch, mile, metric, value: every
                mile's value and every finished epoch's mean, all stages; `nebulae.aerolog.metrics`).
            record: a history CSV (run, stage, metric, epoch, mean) to which this run's finished epochs are
                written (replacing this run's earlier rows), with `<metric>_runs.png` drawing every run in it.
            tensorboard: also write TensorBoard event files (needs `pip install tensorboardX`) under
                `tensorboard/<run>/<STAGE>/`: tags `<metric>/mile` (step: mile) and `<metric>/epoch` (step:
                epoch), rewritten by each call.
            inviz: also draw the PNG curves of 'inviz' metrics (they are in the metrics file either way).

        Only rank 0 writes; other ranks return [].
        """
        series = {}
        for st in self._stages.values():
            for m in st.metrics.values():
                if m.recorded:
                    m.fold()
                    m.plot_series()
                    series[(st.name, m.name)] = m
        if rank() != 0:
            return []
        if tensorboard:
            from nebulae.aerolog import tensorboard as _tensorboard

            _tensorboard.writer_class()  # no writer installed: say so before writing anything
        self.log_path.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        if tachograph:
            for (stage, name), m in series.items():
                m.flush()  # the file holds the rows spilled so far, then these
                self._metrics.epochs(stage, name, m.epochs, m.epoch_means)
            if self._metrics.begun:
                written.append(self._metrics.path)
        history = None
        if record is not None:
            history = self._record(Path(record), series)
            written.append(Path(record))
        if tensorboard:
            folder = self.log_path / "tensorboard" / _safe(self.run_id)
            written += _tensorboard.write(folder, self._metrics.every_row(series))
        if gauge:
            from nebulae.aerolog import plots

            drawn = {key: m for key, m in series.items() if inviz or m.kind != "inviz"}
            colours = plots.stage_colours(self._stages)
            written += plots.mile_curves(self.log_path, drawn, self.window, colours)
            written += plots.epoch_curves(self.log_path, drawn, colours)
            if history is not None:
                kinds = {name: m.kind for (_, name), m in series.items()}
                shown = [r for r in history if inviz or kinds.get(r["metric"]) != "inviz"]
                written += plots.run_curves(self.log_path, shown, colours, kinds, self.run_id)
        return written

    def _record(self, path: Path, series: dict) -> list[dict]:
        rows = []
        if path.exists():
            with path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("run") != self.run_id]
        for (stage, name), m in series.items():
            rows += [
                {"run": self.run_id, "stage": stage, "metric": name, "epoch": e, "mean": v}
                for e, v in zip(m.epochs, m.epoch_means)
            ]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, ["run", "stage", "metric", "epoch", "mean"])
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
        return rows
