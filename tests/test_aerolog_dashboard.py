"""aerolog.DashBoard: real terminal output (a pseudo-terminal and a pipe), CSV and PNG logs, lazy conversion.

The pseudo-terminal and pipe runs are fresh interpreters driving a board through two epochs with
every format type; their output is read back as the terminal received it.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nebulae.aerolog.curve import draw_bar, draw_curve, ordinal
from nebulae.aerolog.dashboard import DashBoard
from tests.conftest import ROOT, run_in_pty, run_python

DRIVER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from nebulae.aerolog import DashBoard

    log_dir = sys.argv[1]
    fmt = {
        "loss": (".3f", "raw"),
        "acc": (".1f", "percent"),
        "lr": (None, "inviz"),
        "tag": (lambda v: f"<tag {v:.0f}>", "tailor"),
        "img": (None, "image"),
    }
    db = DashBoard(log_dir, window=2, divisor=4, span=8, format=fmt)
    for epoch in range(2):
        for mile in range(4):
            entry = {"loss": np.float32(4 - mile), "acc": 0.25 * (mile + 1), "lr": 0.5, "tag": mile,
                     "img": np.eye(4, dtype=np.float32)}
            db.gauge(entry, mile, epoch, 4, "TRAIN", interval=2, duration=0.5)
        for mile in range(2):
            db.gauge({"acc": 0.5 + 0.25 * mile}, mile, epoch, 2, "DEV", duration=0.25)
    print("READ", db.read("loss", "TRAIN"), db.read("acc", "DEV", 0))
    files = db.log(gauge=len(sys.argv) < 4, record=sys.argv[2])  # a third argument: CSV only
    print("FILES", len(files))
    """
)


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NEB_CORE", "RANK", "NEB_RANK")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="160", LINES="50", TERM="xterm")
    return env


def _run_in_pty(args: list[str]) -> str:
    """Run `python -c DRIVER args` with a pseudo-terminal as stdout/stderr; return what the terminal received."""
    return run_in_pty(DRIVER, args, _env(), timeout=120)


def _check_logs(log_dir, history) -> None:
    with open(log_dir / "metrics.csv") as f:  # the run's one long-format file: every stage and metric
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["run", "stage", "epoch", "mile", "metric", "value"]
    loss = [r for r in rows if (r["stage"], r["metric"]) == ("TRAIN", "loss") and r["mile"]]
    assert [int(r["mile"]) for r in loss] == list(range(1, 9))
    assert [float(r["value"]) for r in loss] == [4, 3, 2, 1] * 2
    assert [int(r["epoch"]) for r in loss] == [0] * 4 + [1] * 4
    means = {(r["stage"], r["metric"], r["epoch"]): r["value"] for r in rows if not r["mile"]}
    assert means[("DEV", "acc", "0")] == means[("DEV", "acc", "1")] == "0.625"
    assert means[("TRAIN", "lr", "0")] == means[("TRAIN", "lr", "1")] == "0.5"  # inviz: recorded though never shown
    assert not any(r["metric"] == "img" for r in rows)  # images are not recorded
    assert {r["stage"] for r in rows} == {"TRAIN", "DEV"} and len({r["run"] for r in rows}) == 1
    assert sorted(p.name for p in log_dir.glob("*.csv")) == ["metrics.csv"]  # was 10 per-metric CSV files
    for name in ("loss_TRAIN_mile.png", "acc_DEV_mile.png", "acc_epoch.png", "loss_epoch.png", "loss_runs.png"):
        data = (log_dir / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    assert not list(log_dir.glob("lr_*.png"))  # no curves of inviz entries unless asked
    with open(history) as f:
        hist = list(csv.DictReader(f))
    assert {(r["stage"], r["metric"], r["epoch"]) for r in hist} >= {("TRAIN", "loss", "0"), ("DEV", "acc", "1")}
    assert {r["mean"] for r in hist if r["metric"] == "loss"} == {"2.5"}


def _check_text(text: str) -> None:
    plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
    # display steps every 2 miles: the rate is from the miles' durations, not the interval's; bar: '#.' or '━'
    bar = r"(\[[#.]{20}\]|━{20})"
    head = r"\| 2\.00 it/s \| elapsed 0:00:0\d \| ETA 0:00:0\d \| TRAIN \|"
    assert re.search(r"\| 1st Epoch \| 2/4 Miles " + bar + " " + head + r" loss: 3\.000 \|", plain)
    assert "acc: 50.0% | tag: <tag 1> |" in plain
    assert re.search(r"\| 2nd Epoch \| 2/4 Miles " + bar + " " + head, plain)
    assert "lr" not in plain.replace("TRAIN:loss", "")  # inviz: never shown
    assert " @@@" in plain and "@@ @" in plain  # the image as text: rows 0 and 2 of eye(4), 1.0 blank, 0.0 dense
    # epoch summaries: epoch means, time per epoch
    assert "| 1st Epoch | 4 Miles | 2 s/epoch | TRAIN | loss: 2.500 | acc: 62.5% | tag: <tag 2> |" in plain
    assert "| 2nd Epoch | 2 Miles | 500 ms/epoch | DEV | acc: 62.5% |" in plain
    assert "TRAIN:loss" in plain  # the curve's title
    assert "READ 2.5 0.625" in plain


def test_dashboard_in_a_pseudo_terminal(tmp_path):
    text = _run_in_pty([str(tmp_path / "a" / "b" / "logs"), str(tmp_path / "hist.csv")])
    _check_text(text)
    assert "\x1b[33m━" in text  # coloured bar
    assert "\x1b[1A\x1b[2K" in text  # the live block is redrawn in place
    assert "\x1b[1;36m3.000\x1b[0m" in text
    _check_logs(tmp_path / "a" / "b" / "logs", tmp_path / "hist.csv")  # recursive mkdir


def test_dashboard_in_a_pipe(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, str(tmp_path / "logs"), str(tmp_path / "hist.csv")],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    _check_text(out.stdout)
    assert "\x1b" not in out.stdout  # plain appended lines for logs and notebooks
    lines = out.stdout.splitlines()
    assert sum("TRAIN | loss" in line and "Miles [" in line for line in lines) == 4  # miles 2 and 4, twice
    _check_logs(tmp_path / "logs", tmp_path / "hist.csv")
    again = subprocess.run(
        [sys.executable, "-c", DRIVER, str(tmp_path / "logs2"), str(tmp_path / "hist.csv"), "csv-only"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    with open(tmp_path / "hist.csv") as f:
        runs = {r["run"] for r in csv.DictReader(f)}
    assert len(runs) == 2  # the second run appended its epochs next to the first


class CountingScalar:
    """A scalar from some other library: counts every conversion to a host number."""

    conversions = 0
    shape = ()

    def __init__(self, v):
        self.v = v

    def __float__(self):
        CountingScalar.conversions += 1
        return float(self.v)


def test_values_convert_only_on_display_steps(tmp_path, capsys):
    CountingScalar.conversions = 0
    db = DashBoard(tmp_path, format={"loss": (".2f", "raw")})
    for mile in range(4):
        db.gauge({"loss": CountingScalar(mile)}, mile, 0, 10, interval=5)
    assert CountingScalar.conversions == 0  # no display yet: nothing converted
    db.gauge({"loss": CountingScalar(4)}, 4, 0, 10, interval=5)
    assert CountingScalar.conversions >= 5  # the display converts the pending values in one go
    assert "loss: 4.00" in capsys.readouterr().out
    assert db.read("loss", "TRAIN") == pytest.approx(2.0)  # mean so far of the running epoch


def test_device_scalars_of_the_bound_engine(dock, tmp_path, capsys):
    db = DashBoard(tmp_path, window=3)
    for mile in range(3):
        db.gauge({"loss": dock.coat(np.float32(mile + 1)), "n": np.int64(mile)}, mile, 0, 3)
    assert db.read("loss", "TRAIN", 0) == pytest.approx(2.0)
    assert db.read("n", "TRAIN") == pytest.approx(1.0)
    assert "loss: 3 |" in capsys.readouterr().out


def test_unknown_length_epochs_and_edge_cases(tmp_path, capsys):
    db = DashBoard(tmp_path)
    for epoch in range(2):
        for mile in range(5):
            db.gauge({"x": float(mile)}, mile, epoch, -1, "ITER")
    text = capsys.readouterr().out
    assert "| 1st Epoch | 5 Miles [....#...............]" in text  # the bouncing block
    assert "| 1st Epoch | 5 Miles |" in text  # closed when epoch 1 began
    db.end_epoch("ITER")
    assert "| 2nd Epoch | 5 Miles |" in capsys.readouterr().out
    assert db.read("x", "ITER", 1) == 2.0 and db.read("x", "ITER", -2) == 2.0
    one = DashBoard(tmp_path)
    one.gauge({"x": 1.0}, 0, 0, 1)  # mpe=1 and no duration: no division by zero
    assert "| 1st Epoch | 1 Miles |" in capsys.readouterr().out
    with pytest.raises(KeyError, match="no recorded metric 'y'"):
        db.read("y", "ITER")
    with pytest.raises(KeyError, match="no stage 'DEV'"):
        db.read("x", "DEV")
    with pytest.raises(IndexError, match="no epoch 7"):
        db.read("x", "ITER", 7)
    with pytest.raises(ValueError, match="format\\['a'\\]: type 'bold'"):
        DashBoard(tmp_path, format={"a": (".2f", "bold")})
    with pytest.raises(ValueError, match="not a format spec"):
        DashBoard(tmp_path, format={"a": ("zz", "raw")})
    with pytest.raises(ValueError, match="span must be"):
        DashBoard(tmp_path, span=1)
    with pytest.raises(ValueError, match="must be a scalar"):
        db.gauge({"x": np.ones(3)}, 0, 5, 1, "ITER")


def test_only_rank_zero_prints_and_writes(tmp_path):
    code = textwrap.dedent(
        f"""
        from nebulae.aerolog import DashBoard
        db = DashBoard({str(tmp_path / "logs")!r})
        for mile in range(3):
            db.gauge({{"x": 1.0}}, mile, 0, 3)
        assert db.read("x", "TRAIN") == 1.0
        assert db.log() == []
        """
    )
    out = run_python(code, env={"RANK": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    assert not (tmp_path / "logs").exists()


def test_ordinals_bar_and_curve():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111, 112)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th", "112th",
    ]  # fmt: skip
    assert draw_bar(5, 10) == "[##########..........]"
    assert [draw_bar(d, 0).index("#") for d in (1, 2, 20, 21, 39)] == [1, 2, 20, 19, 1]
    lines = draw_curve([0.0, 1.0, 2.0, 2.0, 1.0], 3, "T:m", 11)
    assert lines[0].strip() == "T:m"
    assert lines[1].endswith("|  _\\ ") and lines[3].endswith("|/    ")
    assert lines[-1].strip() == "11 15"  # first and last mile under the ends of the curve
    flat = draw_curve([0.7, 0.7 + 1e-12], 4, "flat", 1)
    assert sum("0.7" in line for line in flat) == 1  # a constant curve: one level, labelled once
