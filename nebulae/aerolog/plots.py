"""PNG curves of DashBoard logs, drawn with matplotlib's Agg canvas (no GUI, no global backend change).

Every plot follows the same rules: a stage has one colour in all of them (`stage_colours`), epochs are
numbered as in `gauge` and the metrics file (from 0) on integer ticks, a 'percent' metric is drawn in
percent, and the layout is constrained (saved with a tight box) so no title, label or legend is cut.
The `*_figure` functions build the figures; `mile_curves`, `epoch_curves` and `run_curves` save them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "EPOCH_LABEL", "epoch_curves", "epoch_figure", "mile_curves", "mile_figure", "run_curves", "run_figure",
    "stage_colours",
]  # fmt: skip

PALETTE = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
           "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan")  # fmt: skip
EPOCH_LABEL = "epoch (from 0, as in metrics.csv)"
_RUN_STYLES = ("--", ":", "-.")


def stage_colours(stages: Iterable[str], colours: Mapping[str, str] | None = None) -> dict[str, str]:
    """A colour per stage: those of `colours` kept, new stages taking the next palette colours in order.

    Args:
        stages: stage names, in the order they take colours (a DashBoard's: in order of first `gauge`).
        colours: colours already given (kept as they are).
    """
    out = dict(colours or {})
    for stage in stages:
        if stage not in out:
            out[stage] = PALETTE[len(out) % len(PALETTE)]
    return out


def _figure(title: str, xlabel: str, ylabel: str):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(8, 4.5), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # miles and epochs are whole numbers
    ax.grid(True, alpha=0.3)
    return fig, ax


def _scale(kind: str | None) -> tuple[float, str]:
    return (100.0, " (%)") if kind == "percent" else (1.0, "")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "-" for c in name)


def _save(fig, path: Path) -> Path:
    fig.savefig(path, bbox_inches="tight", pad_inches=0.1)
    return path


def mile_figure(stage: str, name: str, m: Any, window: int, colour: str = PALETTE[0]):
    """The mile curve of one (stage, metric): every plotted value, its moving average, the extremes annotated.

    Args:
        stage, name: the stage and the metric.
        m: a DashBoard metric with `miles`, `values`, `averages` (the plotted series) and `kind`.
        window: the moving-average length (1: values only).
        colour: the stage's colour.
    """
    scale, unit = _scale(getattr(m, "kind", None))
    values = [v * scale for v in m.values]
    averages = [v * scale for v in m.averages]
    fig, ax = _figure(f"{stage}:{name}", "mile", name + unit)
    if window > 1:
        ax.plot(m.miles, values, color=colour, alpha=0.3, linewidth=0.8, label="value")
        ax.plot(m.miles, averages, color=colour, linewidth=1.5, label=f"moving average ({window})")
        ax.legend()
    else:
        ax.plot(m.miles, values, color=colour, linewidth=1.2, label="value")
    lo = min(range(len(averages)), key=averages.__getitem__)
    hi = max(range(len(averages)), key=averages.__getitem__)
    middle = (m.miles[0] + m.miles[-1]) / 2
    for i, where, dy in ((lo, "min", -12), (hi, "max", 6)):
        ax.annotate(
            f"{where} {averages[i]:.4g}{unit.strip(' ()')}",
            (m.miles[i], averages[i]),
            xytext=(0, dy),
            textcoords="offset points",
            ha="right" if m.miles[i] > middle else "left",
            fontsize=8,
        )  # inside the axes: text runs away from the nearer edge
    return fig


def epoch_figure(name: str, stages: list[tuple[str, Any]], colours: Mapping[str, str]):
    """The epoch means of one metric, a line per stage in its colour.

    Args:
        name: the metric.
        stages: (stage, metric) pairs; each metric has `epochs`, `epoch_means` and `kind`.
        colours: stage -> colour.
    """
    scale, unit = _scale(getattr(stages[0][1], "kind", None))
    fig, ax = _figure(f"{name}: epoch means", EPOCH_LABEL, name + unit)
    for stage, m in stages:
        ax.plot(m.epochs, [v * scale for v in m.epoch_means], marker="o", color=colours[stage], label=stage)
    ax.legend()
    return fig


def run_figure(
    name: str,
    runs: Mapping[tuple[str, str], list[tuple[int, float]]],
    colours: Mapping[str, str],
    kind: str | None = None,
    current: str | None = None,
):
    """The epoch means of one metric over runs: colour by stage, the current run solid, earlier runs dashed.

    Args:
        name: the metric.
        runs: (run, stage) -> [(epoch, mean), ...].
        colours: stage -> colour.
        kind: the metric's format type ('percent' draws percents).
        current: this run's name (drawn solid and thick).
    """
    scale, unit = _scale(kind)
    fig, ax = _figure(f"{name}: runs", EPOCH_LABEL, name + unit)
    others = sorted({run for run, _ in runs if run != current})
    for (run, stage), points in sorted(runs.items()):
        points = sorted(points)
        style = "-" if run == current else _RUN_STYLES[others.index(run) % len(_RUN_STYLES)]
        ax.plot(
            [p[0] for p in points],
            [p[1] * scale for p in points],
            marker=".",
            color=colours[stage],
            linestyle=style,
            linewidth=2.0 if run == current else 1.0,
            alpha=1.0 if run == current else 0.7,
            label=f"{run} {stage}",
        )
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # outside: never over the lines
    return fig


def mile_curves(folder: Path, series: dict, window: int, colours: Mapping[str, str] | None = None) -> list[Path]:
    """One PNG per (stage, metric), `<metric>_<STAGE>_mile.png`: see `mile_figure`."""
    colours = stage_colours((stage for stage, _ in series), colours)
    out = []
    for (stage, name), m in series.items():
        if m.miles:
            fig = mile_figure(stage, name, m, window, colours[stage])
            out.append(_save(fig, folder / f"{_safe(name)}_{_safe(stage)}_mile.png"))
    return out


def epoch_curves(folder: Path, series: dict, colours: Mapping[str, str] | None = None) -> list[Path]:
    """One PNG per metric with finished epochs, `<metric>_epoch.png`: see `epoch_figure`."""
    colours = stage_colours((stage for stage, _ in series), colours)
    by_metric = defaultdict(list)
    for (stage, name), m in series.items():
        if m.epochs:
            by_metric[name].append((stage, m))
    return [
        _save(epoch_figure(name, stages, colours), folder / f"{_safe(name)}_epoch.png")
        for name, stages in by_metric.items()
    ]


def run_curves(
    folder: Path,
    rows: list[dict],
    colours: Mapping[str, str] | None = None,
    kinds: Mapping[str, str] | None = None,
    current: str | None = None,
) -> list[Path]:
    """One PNG per metric of a history CSV's rows (run, stage, metric, epoch, mean), `<metric>_runs.png`:
    see `run_figure`; `kinds` maps a metric to its format type."""
    lines = defaultdict(lambda: defaultdict(list))
    for r in rows:
        lines[r["metric"]][(r["run"], r["stage"])].append((int(r["epoch"]), float(r["mean"])))
    colours = stage_colours(sorted({r["stage"] for r in rows}), colours)
    kinds = kinds or {}
    return [
        _save(run_figure(name, runs, colours, kinds.get(name), current), folder / f"{_safe(name)}_runs.png")
        for name, runs in lines.items()
    ]
