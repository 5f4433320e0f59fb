"""Output of a whole benchmark run: the terminal table, bench.csv, the ratio chart and a Markdown summary.

Rows are `benchmarks.common.RESULT_FIELDS` dicts. Headline rows (throughput, blocking time) are
table lines; the auxiliary rows of the same suite, workload and contender (first step, peak
memory, thread count) are folded into columns of that line.
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from . import common

AUX = {
    "first step": "first step s",
    "peak RSS": "peak RSS MB",
    "peak RSS (child processes)": "children RSS MB",
    "peak device memory": "device MB",
    "CPU threads": "threads",
}
HEADERS = ("suite", "workload", "contender", "metric", "median (min–max)", "vs", "ratio (min–max)", "target", "met")


def _num(x, digits: int) -> str:
    if x == "" or x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    value = float(x)
    if digits == 0 or abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _spread(med, lo, hi, digits: int) -> str:
    if med == "" or med is None:
        return ""
    if lo == hi:
        return _num(med, digits)
    return f"{_num(med, digits)} ({_num(lo, digits)}–{_num(hi, digits)})"


def _digits(value) -> int:
    if value == "" or value is None:
        return 1
    v = abs(float(value))
    return 0 if v >= 100 else 1 if v >= 10 else 2 if v >= 1 else 3


def table_rows(rows: Sequence[dict]) -> tuple[list[str], list[list[str]]]:
    """(headers, cells) of the terminal table: headline rows with their auxiliary figures as columns."""
    aux: dict[tuple, dict[str, str]] = {}
    for r in rows:
        if r["metric"] in AUX and r["median"] != "":
            key = (r["suite"], r["workload"], r["contender"])
            aux.setdefault(key, {})[AUX[r["metric"]]] = _num(r["median"], 0 if r["unit"] != "s" else 2)
    used = [h for h in AUX.values() if any(h in a for a in aux.values())]
    headline = [r for r in rows if r["metric"] not in AUX]
    folded = {(r["suite"], r["workload"], r["contender"]) for r in headline}
    cells = []
    for r in rows:
        key = (r["suite"], r["workload"], r["contender"])
        if r["metric"] in AUX and key in folded:
            continue
        if r["metric"] in AUX:  # a figure with no headline line of its own (e.g. a shared worker's memory)
            value = f"{_num(r['median'], 0)} {r['unit']}"
            cells.append(
                [r["suite"], r["workload"], r["contender"], r["metric"], value, "", "", "", ""] + [""] * len(used)
            )
            continue
        digits = _digits(r["median"])
        value = _spread(r["median"], r["min"], r["max"], digits)
        value = f"{value} {r['unit']}" if value else r["note"]
        ratio = _spread(r["ratio_median"], r["ratio_min"], r["ratio_max"], 2)
        extra = [aux.get(key, {}).get(h, "") for h in used]
        cells.append(
            [
                r["suite"],
                r["workload"],
                r["contender"],
                r["metric"],
                value,
                r["ratio_to"],
                ratio,
                r["target"],
                r["met"],
                *extra,
            ]
        )
    return [*HEADERS, *used], cells


def print_table(rows: Sequence[dict], title: str, file=None) -> None:
    """Print the table: with rich on a terminal, as plain text otherwise (logs, pipes, tests)."""
    file = file or sys.stdout
    headers, cells = table_rows(rows)
    if file.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        for h in headers:
            table.add_column(h, no_wrap=True)
        for c in cells:
            style = {"no": "red", "FAILED": "red", "yes": "green", common.NOISE: "yellow"}.get(c[8])
            table.add_row(*c, style=style)
        console = Console(file=file)
        widths = [max(len(str(c[i])) for c in [headers, *cells]) for i in range(len(headers))]
        console.width = max(console.width, sum(widths) + 3 * len(widths) + 1)  # else rich cuts the names short
        console.print(table)
    else:
        print(title, file=file)
        print(common.format_table(headers, cells), file=file)


def write_csv(rows: Sequence[dict], path: Path) -> Path:
    """Write the rows to `path` as CSV with the `RESULT_FIELDS` columns (floats at full precision)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=common.RESULT_FIELDS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()})
    return path


def ratio_rows(rows: Sequence[dict]) -> list[dict]:
    """The rows that compare a contender with a baseline (they carry a ratio)."""
    return [r for r in rows if r["ratio_median"] != "" and not math.isnan(float(r["ratio_median"]))]


def chart(rows: Sequence[dict], path: Path, title: str) -> Path | None:
    """A horizontal bar chart of every ratio (min–max whiskers) with its target marked; None without ratios."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = ratio_rows(rows)
    if not data:
        return None
    labels = [f"{r['suite']}: {r['workload']}\n{r['contender']} / {r['ratio_to']} ({r['metric']})" for r in data]
    med = [float(r["ratio_median"]) for r in data]
    lo = [m - float(r["ratio_min"]) for m, r in zip(med, data)]
    hi = [float(r["ratio_max"]) - m for m, r in zip(med, data)]
    palette = {"yes": "tab:green", "no": "tab:red", common.NOISE: "tab:orange"}
    colours = [palette.get(r["met"], "tab:gray") for r in data]
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(data) + 1.5))
    y = list(range(len(data)))[::-1]
    ax.barh(y, med, xerr=[lo, hi], color=colours, alpha=0.8, capsize=3)
    for yi, r in zip(y, data):
        if r["target"]:
            op, bound = r["target"].split()
            ax.plot([float(bound)] * 2, [yi - 0.4, yi + 0.4], color="black", lw=2)
            ax.annotate(r["target"], (float(bound), yi + 0.42), fontsize=7, ha="center", va="bottom")
    for yi, m in zip(y, med):
        ax.annotate(f"{m:.2f}", (m, yi), xytext=(3, -3), textcoords="offset points", fontsize=7, va="top")
    ax.axvline(1.0, color="gray", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel("ratio (median of paired repetitions, whiskers min–max; black ticks: targets)")
    ax.set_title(title.replace(" — ", "\n"), fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(rows: Sequence[dict], machine_line: str, command: str) -> str:
    """A Markdown summary of the ratios and targets, for the README's Performance section."""
    lines = [
        f"Measured on {machine_line}.",
        f"Command (repository root): `{command}`.",
        "",
        "| suite | workload | nebulae | vs | ratio median (min–max) | 95 % CI of the median (n) | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in ratio_rows(rows):
        ratio = _spread(r["ratio_median"], r["ratio_min"], r["ratio_max"], 2)
        ci = f"{_num(r['ratio_ci_low'], 2)}–{_num(r['ratio_ci_high'], 2)} ({r['ratio_n']})" if r.get("ratio_n") else "–"
        lines.append(
            f"| {r['suite']} | {r['workload']} | {r['contender']} ({r['metric']}) | {r['ratio_to']} | {ratio} "
            f"| {ci} | {r['target'] or '–'} | {r['met'] or '–'} |"
        )
    absolute = [r for r in rows if r["target"] and r["ratio_to"] == ""]
    for r in absolute:
        value = _spread(r["median"], r["min"], r["max"], 0)
        lines.append(
            f"| {r['suite']} | {r['workload']} | {r['contender']} ({r['metric']}) | – | {value} {r['unit']} "
            f"| – | {r['target']} | {r['met']} |"
        )
    return "\n".join(lines) + "\n"
