"""aerolog logs: the one long-format metrics file, TensorBoard events read back, the PNG rules checked on the
figure objects (ticks, numbering, percents, colours, nothing clipped), and library messages through logging."""

from __future__ import annotations

import csv
import importlib.util
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from matplotlib.colors import to_hex

from nebulae.aerolog import dashboard, metrics, plots
from nebulae.aerolog.dashboard import DashBoard
from tests.conftest import ROOT, run_python, saves_finish_at_exit

FORMAT = {
    "loss": (".3f", "raw"),
    "acc": (".1f", "percent"),
    "lr": (None, "inviz"),
    "tag": (lambda v: f"<{v:.0f}>", "tailor"),
    "img": (None, "image"),
}


def _train(db: DashBoard, coat, epochs: range, mpe: int = 4) -> None:
    """TRAIN: loss 4-mile (a device scalar), acc (mile+1)/4, lr 0.5, tag, img; DEV: acc 0.5 + 0.25*epoch."""
    for epoch in epochs:
        for mile in range(mpe):
            entry = {"loss": coat(np.float32(4 - mile)), "acc": 0.25 * (mile + 1), "lr": 0.5, "tag": mile,
                     "img": np.eye(4, dtype=np.float32)}  # fmt: skip
            db.gauge(entry, mile, epoch, mpe, "TRAIN", interval=2, duration=0.1)
        db.gauge({"acc": 0.5 + 0.25 * epoch}, 0, epoch, 1, "DEV", duration=0.1)


def _rows(path) -> list[metrics.Row]:
    return list(metrics.read(path))


def test_one_metrics_file_per_run_holds_every_stage_and_metric(dock, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(dashboard, "SPILL", 5)  # small, so the run spills rows to the file before log()
    db = DashBoard(tmp_path, window=2, format=FORMAT)
    _train(db, dock.coat, range(2))
    for mile in range(3):  # an epoch of unknown length, closed by end_epoch
        db.gauge({"loss": 10.0 + mile}, mile, 0, -1, "ITER")
    db.end_epoch("ITER")
    spilled = _rows(tmp_path / metrics.FILE)  # bounded memory: rows are on disk before log()
    assert len(spilled) >= 5 and all(r.mile is not None for r in spilled)

    written = db.log(record=tmp_path / "history.csv")
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == ["history.csv", "metrics.csv"]  # was 12 CSV files
    assert tmp_path / "metrics.csv" in written
    rows = _rows(tmp_path / "metrics.csv")
    assert {r.run for r in rows} == {db.run_id}
    assert {(r.stage, r.metric) for r in rows} == {
        ("TRAIN", "loss"), ("TRAIN", "acc"), ("TRAIN", "lr"), ("TRAIN", "tag"), ("DEV", "acc"), ("ITER", "loss")
    }  # fmt: skip
    miles = {}
    for r in rows:
        if r.mile is not None:
            miles.setdefault((r.stage, r.metric), []).append((r.epoch, r.mile, r.value))
    assert sorted(miles["TRAIN", "loss"], key=lambda t: t[1]) == [
        (e, 4 * e + m + 1, 4.0 - m) for e in range(2) for m in range(4)
    ]  # every mile once, as given, with its epoch
    assert sorted(miles["TRAIN", "acc"], key=lambda t: t[1])[:2] == [(0, 1, 0.25), (0, 2, 0.5)]  # as given, not %
    assert miles["DEV", "acc"] == [(0, 1, 0.5), (1, 2, 0.75)]
    assert miles["ITER", "loss"] == [(0, 1, 10.0), (0, 2, 11.0), (0, 3, 12.0)]
    means = {(r.stage, r.metric, r.epoch): r.value for r in rows if r.mile is None}
    assert len(means) == 2 * 4 + 2 + 1
    for (stage, name, epoch), value in means.items():
        assert value == pytest.approx(db.read(name, stage, epoch)), (stage, name, epoch)
    assert means["TRAIN", "loss", 1] == 2.5 and means["TRAIN", "lr", 0] == 0.5 and means["ITER", "loss", 0] == 11.0

    assert db.log(gauge=False) == [tmp_path / "metrics.csv"]  # nothing new: nothing appended
    assert len(_rows(tmp_path / "metrics.csv")) == len(rows)
    _train(db, dock.coat, range(2, 3))
    db.log(gauge=False)
    more = _rows(tmp_path / "metrics.csv")
    assert len(more) == len(rows) + 4 * 4 + 1 + 4 + 1  # the new miles and epoch means, once
    with open(tmp_path / "history.csv") as f:
        assert {r["stage"] for r in csv.DictReader(f)} == {"TRAIN", "DEV", "ITER"}  # record= still works

    again = DashBoard(tmp_path)
    again.gauge({"x": 1.0}, 0, 0, 1)
    again.log(gauge=False)
    assert [(r.metric, r.run) for r in _rows(tmp_path / "metrics.csv")] == [("x", again.run_id)] * 2  # a new run


def test_metrics_read_refuses_another_csv(tmp_path):
    (tmp_path / "other.csv").write_text("mile,TRAIN:loss,average1\n1,2.0,2.0\n")
    with pytest.raises(ValueError, match="not a DashBoard metrics file"):
        list(metrics.read(tmp_path / "other.csv"))


def _events(path) -> list[tuple[str, int, float]]:
    """(tag, step, value) of every scalar in a TFRecord event file, parsed with tensorboardX's protobufs."""
    from tensorboardX.proto import event_pb2

    data, pos, out = path.read_bytes(), 0, []
    while pos < len(data):
        (n,) = struct.unpack_from("<Q", data, pos)
        event = event_pb2.Event()
        event.ParseFromString(data[pos + 12 : pos + 12 + n])  # length, its CRC, the record, its CRC
        pos += 12 + n + 4
        out += [(v.tag, event.step, v.simple_value) for v in event.summary.value]
    return out


@pytest.mark.skipif(importlib.util.find_spec("tensorboardX") is None, reason="tensorboardX is not installed")
def test_tensorboard_events_hold_every_mile_and_epoch_mean(dock, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(dashboard, "SPILL", 3)  # some miles come from the file, the rest are still held
    db = DashBoard(tmp_path, window=2, format=FORMAT)
    _train(db, dock.coat, range(2))
    for tachograph in (False, True):  # the second call rewrites the events: no duplicates
        files = [p for p in db.log(gauge=False, tachograph=tachograph, tensorboard=True) if "tfevents" in p.name]
        capsys.readouterr()
        assert sorted(p.parent.name for p in files) == ["DEV", "TRAIN"]
        assert all(p.parent.parent == tmp_path / "tensorboard" / dashboard._safe(db.run_id) for p in files)
        events = {p.parent.name: _events(p) for p in files}
        train = events["TRAIN"]
        assert sorted((s, v) for t, s, v in train if t == "loss/mile") == [(4 * e + m + 1, 4.0 - m) for e in (0, 1)
                                                                            for m in range(4)]  # fmt: skip
        assert sorted((s, v) for t, s, v in train if t == "loss/epoch") == [(0, 2.5), (1, 2.5)]
        assert sorted((s, v) for t, s, v in train if t == "lr/epoch") == [(0, 0.5), (1, 0.5)]
        assert not any(t.startswith("img") for t, _, _ in train)
        assert sorted((t, s, v) for t, s, v in events["DEV"]) == [
            ("acc/epoch", 0, 0.5), ("acc/epoch", 1, 0.75), ("acc/mile", 1, 0.5), ("acc/mile", 2, 0.75)
        ]  # fmt: skip


def test_tensorboard_without_a_writer_names_the_package(tmp_path):
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["tensorboardX"] = None  # as if not installed
        from nebulae.aerolog import DashBoard
        db = DashBoard({str(tmp_path / "logs")!r})
        db.gauge({{"x": 1.0}}, 0, 0, 1)
        try:
            db.log(tensorboard=True)
        except ImportError as err:
            print("ERR", err)
        """
    )
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert "ERR DashBoard.log(tensorboard=True) needs the tensorboardX package: pip install tensorboardX" in out.stdout
    assert not (tmp_path / "logs").exists()  # said before writing anything


def _board(tmp_path, capsys, window: int = 2, name: str = "loss") -> DashBoard:
    db = DashBoard(tmp_path, window=window, format={"acc": (".1f", "percent"), "lr": (None, "inviz")})
    for epoch in range(3):
        for mile in range(5):
            db.gauge({name: 1e6 * (5 - mile) + epoch, "acc": 0.1 * (mile + epoch), "lr": 0.1}, mile, epoch, 5)
        db.gauge({"acc": 0.2 * epoch + 0.1, name: 2e6}, 0, epoch, 1, "DEV")
    db.log(gauge=False)  # sets the plotted series
    capsys.readouterr()
    return db


def _metric(db: DashBoard, stage: str, name: str):
    return db._stages[stage].metrics[name]


def _drawn_ticks(ax) -> list[float]:
    lo, hi = ax.get_xlim()
    return [t for t in ax.get_xticks() if lo <= t <= hi]


def test_epoch_plots_use_integer_ticks_and_the_files_numbers(tmp_path, capsys):
    db = _board(tmp_path, capsys)
    series = [(stage, _metric(db, stage, "loss")) for stage in ("TRAIN", "DEV")]
    fig = plots.epoch_figure("loss", series, plots.stage_colours(["TRAIN", "DEV"]))
    fig.canvas.draw()
    ax = fig.axes[0]
    assert all(float(t).is_integer() for t in _drawn_ticks(ax)), ax.get_xticks()  # was 1.0, 1.25, 1.5, ...
    filed = sorted({r.epoch for r in metrics.read(tmp_path / "metrics.csv") if r.mile is None})
    assert [list(line.get_xdata()) for line in ax.lines] == [filed, filed] == [[0, 1, 2]] * 2  # was 1, 2, 3
    assert "as in metrics.csv" in ax.get_xlabel()
    rows = [{"run": "r1", "stage": "TRAIN", "metric": "loss", "epoch": str(e), "mean": "1"} for e in range(3)]
    runs = plots.run_figure("loss", {("r1", "TRAIN"): [(int(r["epoch"]), 1.0) for r in rows]}, {"TRAIN": "C0"})
    runs.canvas.draw()
    assert list(runs.axes[0].lines[0].get_xdata()) == [0, 1, 2]
    assert all(float(t).is_integer() for t in _drawn_ticks(runs.axes[0]))


def test_percent_metrics_are_drawn_in_percent(tmp_path, capsys):
    db = _board(tmp_path, capsys)
    acc = _metric(db, "TRAIN", "acc")
    mile = plots.mile_figure("TRAIN", "acc", acc, 2)
    ax = mile.axes[0]
    assert ax.get_ylabel() == "acc (%)"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), np.asarray(acc.values) * 100)
    assert any(t.get_text().startswith("max ") and t.get_text().endswith("%") for t in ax.texts)
    epoch = plots.epoch_figure("acc", [("TRAIN", acc)], {"TRAIN": "C0"}).axes[0]
    np.testing.assert_allclose(epoch.lines[0].get_ydata(), np.asarray(acc.epoch_means) * 100)
    assert epoch.lines[0].get_ydata()[0] == pytest.approx(20.0)  # miles 0..4 of epoch 0: mean 0.2
    loss = plots.mile_figure("TRAIN", "loss", _metric(db, "TRAIN", "loss"), 2).axes[0]
    assert loss.get_ylabel() == "loss" and loss.lines[0].get_ydata()[0] == 5e6  # raw stays raw


def _outside(fig) -> list[str]:
    """The title, axis labels, annotations and legend texts reaching past the figure's edges, and the whole
    drawn area (tick labels included) when it does."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox

    def past(e) -> bool:
        return e.x0 < box.x0 - 0.5 or e.y0 < box.y0 - 0.5 or e.x1 > box.x1 + 0.5 or e.y1 > box.y1 + 0.5

    out = []
    for ax in fig.axes:
        legend = ax.get_legend()
        texts = [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts, *(legend.get_texts() if legend else [])]
        out += [t.get_text() for t in texts if t.get_text() and past(t.get_window_extent(renderer))]
    drawn = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)  # everything drawn, in pixels
    if past(drawn):
        out.append(f"drawn area {drawn.bounds} past the figure {box.bounds}")
    return out


def test_no_label_is_clipped(tmp_path, capsys):
    name = "gap_to_the_teacher"  # long negative tick labels ("-0.0016"): the old fixed margins cut the y label
    db = DashBoard(tmp_path, window=2)
    for mile in range(8):
        db.gauge({name: -0.00175 + 0.0001 * mile}, mile % 4, mile // 4, 4, duration=0.1)
        db.gauge({name: -0.0012}, 0, mile // 4, 1, "DEV", duration=0.1)
    db.log(gauge=False)
    capsys.readouterr()
    m = _metric(db, "TRAIN", name)
    colours = plots.stage_colours(["TRAIN", "DEV"])
    runs = {(f"2026-12-04T06:00:0{i}-1234{i}", "TRAIN"): [(e, 1e6 * (e + i)) for e in range(3)] for i in range(6)}
    figures = {
        "mile": plots.mile_figure("TRAIN", name, m, 2, colours["TRAIN"]),
        "epoch": plots.epoch_figure(name, [("TRAIN", m), ("DEV", _metric(db, "DEV", name))], colours),
        "runs": plots.run_figure(name, runs, colours, current="2026-12-04T06:00:05-12345"),
    }
    for what, fig in figures.items():
        assert _outside(fig) == [], what
    db.log()
    for png in (f"{name}_TRAIN_mile.png", f"{name}_epoch.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_a_stage_has_one_colour_in_every_plot(tmp_path, capsys):
    db = _board(tmp_path, capsys)
    colours = plots.stage_colours(db._stages)
    loss = {stage: _metric(db, stage, "loss") for stage in ("TRAIN", "DEV")}
    mile = {stage: plots.mile_figure(stage, "loss", loss[stage], 2, colours[stage]) for stage in loss}
    epoch = plots.epoch_figure("loss", list(loss.items()), colours).axes[0]
    runs = plots.run_figure("loss", {("r", s): [(0, 1.0)] for s in loss}, colours, current="r").axes[0]
    for stage in loss:
        in_mile = {to_hex(line.get_color()) for line in mile[stage].axes[0].lines}
        in_epoch = {to_hex(line.get_color()) for line in epoch.lines if line.get_label() == stage}
        in_runs = {to_hex(line.get_color()) for line in runs.lines if line.get_label() == f"r {stage}"}
        assert in_mile == in_epoch == in_runs == {to_hex(colours[stage])}, stage  # was blue for every mile plot
    assert colours["TRAIN"] != colours["DEV"]
    assert plots.stage_colours(["DEV", "TEST"], colours) == {**colours, "TEST": plots.PALETTE[2]}


def test_no_plots_of_inviz_entries_unless_asked(tmp_path, capsys):
    db = _board(tmp_path, capsys)
    names = {p.name for p in db.log(record=tmp_path / "h.csv")}
    assert "acc_TRAIN_mile.png" in names and "acc_runs.png" in names
    assert not [n for n in names if n.startswith("lr_")] and not list(tmp_path.glob("lr_*"))
    assert any(r.metric == "lr" for r in metrics.read(tmp_path / "metrics.csv"))  # recorded all the same
    asked = {p.name for p in db.log(record=tmp_path / "h.csv", inviz=True)}
    assert {"lr_TRAIN_mile.png", "lr_epoch.png", "lr_runs.png"} <= asked
    capsys.readouterr()


EXIT_CHILD = """
import logging, sys
if sys.argv[3] == "configured":
    logging.basicConfig(format="%(levelname)s|%(name)s|%(message)s")
import nebulae
nebulae.Law.CORE = sys.argv[1]
from nebulae.astro import dock
from nebulae.cockpit.timemachine import TimeMachine
from tests.models.steps import mlp
tm, net = TimeMachine(sys.argv[2], sys.argv[2]), mlp(dock)
tm.drop(net)
tm.wait()
tm.drop(net)  # still in flight at exit: finished by the exit hook, which fails
"""


@saves_finish_at_exit
def test_library_messages_go_through_the_nebulae_logger_and_show_by_default(engine, tmp_path):
    env = {**os.environ, "NEB_FAULT": "anchor.written@2=enospc", "PYTHONPATH": str(ROOT)}
    err = {}
    for how in ("default", "configured"):
        args = [sys.executable, "-c", EXIT_CHILD, engine, str(tmp_path / how), how]
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180, cwd=ROOT)
        assert done.returncode == 1, done.stderr[-2000:]
        err[how] = done.stderr
    # no handler configured: Python's last-resort handler shows the error (and its traceback) on stderr
    assert "an anchor still being saved at exit failed (above); exiting with status 1" in err["default"]
    assert "Traceback" in err["default"] and "no space left on device" in err["default"]
    # the user's logging configuration decides the format: the record comes from nebulae's module logger
    assert "ERROR|nebulae.cockpit.timemachine|nebulae: an anchor still being saved at exit failed" in err["configured"]
    assert (
        "ERROR|nebulae.cockpit.timemachine|an anchor still being saved at exit failed\nTraceback" in err["configured"]
    )
