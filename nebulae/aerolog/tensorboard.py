"""TensorBoard event files of a DashBoard run, written with tensorboardX's SummaryWriter (engine-neutral:
no torch, no TensorFlow); only when `DashBoard.log(tensorboard=True)` asks and the package is installed.

One sub-folder per stage (`<folder>/<STAGE>/`), so TensorBoard draws the stages of a tag in one chart,
one colour each: `<metric>/mile` (step: the stage's global mile) and `<metric>/epoch` (step: the epoch
as given to `gauge`; the value: the epoch mean). Values are as given (a 'percent' metric stays a fraction).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from nebulae.aerolog.metrics import Row

__all__ = ["write", "writer_class"]

INSTALL = "pip install tensorboardX  (or: pip install 'nebulae[tensorboard]')"


def writer_class():
    """tensorboardX's SummaryWriter; an ImportError naming the package to install when it is missing."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError as err:
        raise ImportError(f"DashBoard.log(tensorboard=True) needs the tensorboardX package: {INSTALL}") from err
    return SummaryWriter


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "-" for c in name)


def write(folder: str | Path, rows: Iterable[Row]) -> list[Path]:
    """Write `rows` (a run's metrics-file rows) as event files under `folder`, which is emptied first (each
    call rewrites the run's events); return the event files.

    Args:
        folder: this run's TensorBoard folder (`<log_path>/tensorboard/<run>`); point TensorBoard at its parent
            to compare runs.
        rows: per-mile rows (`mile` set) and epoch-mean rows (`mile` None), in any order.
    """
    SummaryWriter = writer_class()
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    writers = {}
    try:
        for row in rows:
            w = writers.get(row.stage)
            if w is None:
                w = writers[row.stage] = SummaryWriter(logdir=str(folder / _safe(row.stage)), flush_secs=3600)
            if row.mile is None:
                w.add_scalar(f"{row.metric}/epoch", row.value, row.epoch)
            else:
                w.add_scalar(f"{row.metric}/mile", row.value, row.mile)
    finally:
        for w in writers.values():
            w.close()
    return sorted(p for p in folder.rglob("events.out.tfevents.*") if p.is_file())
