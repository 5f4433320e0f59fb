"""PNG curves of DashBoard logs, drawn with matplotlib's Agg canvas (no GUI, no global backend change)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

__all__ = ["mile_curves", "epoch_curves", "run_curves"]


def _figure(title: str, xlabel: str, ylabel: str):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=90)
    fig.subplots_adjust(left=0.1, right=0.97, top=0.92, bottom=0.12)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "-" for c in name)


def _save(fig, path: Path) -> Path:
    fig.savefig(path)
    return path


def mile_curves(folder: Path, series: dict, window: int) -> list[Path]:
    """One PNG per (stage, metric): every mile's value, its moving average, and the extremes annotated."""
    out = []
    for (stage, name), m in series.items():
        if not m.miles:
            continue
        fig, ax = _figure(f"{stage}:{name}", "mile", name)
        if window > 1:
            ax.plot(m.miles, m.values, color="tab:blue", alpha=0.3, linewidth=0.8, label="value")
            ax.plot(m.miles, m.averages, color="tab:blue", linewidth=1.5, label=f"moving average ({window})")
            ax.legend()
        else:
            ax.plot(m.miles, m.values, color="tab:blue", linewidth=1.2)
        lo = min(range(len(m.averages)), key=m.averages.__getitem__)
        hi = max(range(len(m.averages)), key=m.averages.__getitem__)
        for i, where in ((lo, "min"), (hi, "max")):
            ax.annotate(f"{where} {m.averages[i]:.4g}", (m.miles[i], m.averages[i]), fontsize=8)
        out.append(_save(fig, folder / f"{_safe(name)}_{_safe(stage)}_mile.png"))
    return out


def epoch_curves(folder: Path, series: dict) -> list[Path]:
    """One PNG per metric with finished epochs: the epoch means of every stage, with markers."""
    by_metric = defaultdict(list)
    for (stage, name), m in series.items():
        if m.epochs:
            by_metric[name].append((stage, m))
    out = []
    for name, stages in by_metric.items():
        fig, ax = _figure(f"{name}: epoch means", "epoch", name)
        for stage, m in stages:
            ax.plot([e + 1 for e in m.epochs], m.epoch_means, marker="o", label=stage)
        ax.legend()
        out.append(_save(fig, folder / f"{_safe(name)}_epoch.png"))
    return out


def run_curves(folder: Path, rows: list[dict]) -> list[Path]:
    """One PNG per metric of a history CSV's rows: a line per (run, stage), epoch means against epoch."""
    lines = defaultdict(lambda: defaultdict(list))
    for r in rows:
        lines[r["metric"]][(r["run"], r["stage"])].append((int(r["epoch"]) + 1, float(r["mean"])))
    out = []
    for name, runs in lines.items():
        fig, ax = _figure(f"{name}: runs", "epoch", name)
        for (run, stage), points in sorted(runs.items()):
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=f"{run} {stage}")
        ax.legend(fontsize=7)
        out.append(_save(fig, folder / f"{_safe(name)}_runs.png"))
    return out
