"""Anchors under faults, on both engines: a kill between the renames of a re-save, during a rotation's removal,
flipped or cut-short bytes, names that would leave save_path. Kills are real SIGKILLs (nebulae.faults points)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from nebulae.cockpit import anchors
from nebulae.cockpit.timemachine import TimeMachine
from tests.conftest import ROOT, saves_finish_at_exit
from tests.models.steps import mlp

pytestmark = pytest.mark.timeout(240)

CHILD = """
import sys
import numpy as np
import nebulae
nebulae.Law.CORE = sys.argv[1]
from nebulae.cockpit.timemachine import TimeMachine
from tests.models.steps import mlp
from nebulae.astro import dock
folder, file, keep = sys.argv[2], sys.argv[3], int(sys.argv[4])
tm = TimeMachine(folder, folder, max_anchors=keep)
net = mlp(dock)
for value in (1.0, 2.0, 3.0):
    net.import_weights({k: np.full_like(v, value) for k, v in net.export_weights().items()})
    tm.drop(net, file=file)
    tm.wait()
    print(value, flush=True)
"""


def _child(engine: str, folder, file: str, fault: str, keep: int = -1) -> subprocess.CompletedProcess:
    env = {**os.environ, "NEB_FAULT": fault, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-c", CHILD, engine, str(folder), file, str(keep)]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=180, cwd=ROOT)


def _value(tm, dock, **kwargs) -> float:
    twin = mlp(dock)
    tm.to(twin, **kwargs)
    values = {float(v.flat[0]) for v in twin.export_weights().values()}
    assert len(values) == 1, values
    return values.pop()


def _hidden(folder) -> list[str]:
    return sorted(e for e in os.listdir(folder) if e.startswith(".") or "orbax-checkpoint-tmp" in e)


def _weights(net, value: float) -> None:
    net.import_weights({k: np.full_like(v, value) for k, v in net.export_weights().items()})


def test_a_kill_while_a_re_save_is_swapped_in_keeps_one_whole_anchor(dock, engine, tmp_path):
    # JAX renames the old copy aside, then the new one in; torch renames the new file over the old one
    point = "anchor.between-renames@1" if engine == "jax" else "anchor.written@2"
    done = _child(engine, tmp_path, "best", point)
    assert done.returncode == -9, done.stderr
    assert done.stdout.split() == ["1.0"]  # killed inside the second drop of 'best'
    tm = TimeMachine(tmp_path, tmp_path)
    assert _value(tm, dock, file="best") == (2.0 if engine == "jax" else 1.0)  # the new copy was whole on JAX
    assert _hidden(tmp_path) == []  # to() put the anchor back and swept the rest
    net = mlp(dock)
    _weights(net, 4.0)
    tm.drop(net, file="best")
    tm.wait()
    assert _value(tm, dock, file="best") == 4.0 and _hidden(tmp_path) == []


def test_a_kill_during_a_rotations_removal_leaves_no_half_anchor_and_no_leftover(dock, engine, tmp_path):
    done = _child(engine, tmp_path, "", "anchor.removing@1", keep=1)
    assert done.returncode == -9, done.stderr
    suffix = ".pth" if engine == "pytorch" else ""
    names = sorted(e for e in os.listdir(tmp_path) if not e.startswith("."))
    assert names == [f"MLP-2{suffix}"]  # MLP-1 was renamed aside before the kill: no half anchor under its name
    tm = TimeMachine(tmp_path, tmp_path, max_anchors=1)
    assert _value(tm, dock) == 2.0
    net = mlp(dock)
    tm.drop(net)
    tm.wait()
    assert _hidden(tmp_path) == [] and sorted(os.listdir(tmp_path)) == [f"MLP-3{suffix}"]


def _largest_file(path: str) -> str:
    if os.path.isfile(path):
        return path
    files = [os.path.join(r, f) for r, _, fs in os.walk(path) for f in fs]
    return max(files, key=os.path.getsize)


def _flip(path: str) -> None:
    """Flip one bit of a stored weight (all 2.0) where the bytes lie plain, so the file still reads back
    (torch); in compressed chunks (Orbax), flip bytes in the middle."""
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        at = data.find(np.full(4, 2.0, np.float32).tobytes())
        for i in [at] if at >= 0 else range(len(data) // 2, len(data) // 2 + 8):
            data[i] ^= 0x01 if at >= 0 else 0x5A
        f.seek(0)
        f.write(data)


def _truncate(path: str) -> None:
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


@pytest.mark.parametrize("damage", [_flip, _truncate], ids=["flipped", "cut-short"])
def test_a_damaged_anchor_is_refused_by_name_and_skipped_for_the_one_before(dock, engine, tmp_path, damage):
    tm = TimeMachine(tmp_path, tmp_path)
    net = mlp(dock)
    for value in (1.0, 2.0):
        _weights(net, value)
        tm.drop(net)
    tm.wait()
    newest = os.path.join(tmp_path, "MLP-2" + (".pth" if engine == "pytorch" else ""))
    damage(_largest_file(newest))
    with pytest.raises(anchors.CorruptAnchorError, match=f"the anchor '{newest}' is corrupt"):
        tm.to(mlp(dock), file="MLP-2")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _value(tm, dock) == 1.0  # the newest intact anchor
    assert any("is corrupt" in str(w.message) and "MLP-1" in str(w.message) for w in caught), caught
    _weights(net, 3.0)
    tm.drop(net)  # nothing already saved is touched
    tm.wait()
    assert _value(tm, dock) == 3.0


@pytest.mark.parametrize(
    ("scope", "file", "bad"),
    [
        ("GAN/G", "", "the craft's scope 'GAN/G' is not a plain name"),
        ("..", "", "the craft's scope '..' is not a plain name"),
        ("MLP", "../../x", "file='../../x' would write outside save_path"),
        ("MLP", "/tmp/elsewhere", "file='/tmp/elsewhere' would write outside save_path"),
        ("MLP", "runs/../../y", "file='runs/../../y' would write outside save_path"),
        ("MLP", "../../../y.h5", "file='../../../y.h5' would write outside save_path"),
        (".hidden", "", "the craft's scope '.hidden' is not a plain name"),
        ("GAN\\G", "", "the craft's scope 'GAN\\\\G' is not a plain name"),
    ],
)
def test_names_that_would_leave_save_path_are_refused_before_anything_is_written(dock, tmp_path, scope, file, bad):
    save = tmp_path / "a" / "b"
    tm = TimeMachine(save, save)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = anchors.temporary(str(save / "MLP-1"), "tmp").replace(f"-{os.getpid()}-", f"-{dead.stdout.strip()}-")
    open(leftover, "wb").close()  # a dead process's leftover: a refused drop must not even sweep it
    net = mlp(dock)
    net.scope = scope
    with pytest.raises(ValueError, match=re.escape(bad)):
        tm.drop(net, file=file)
    assert [p for p in tmp_path.rglob("*") if p.is_file() or p.name not in ("a", "b")] == [Path(leftover)]
    if scope != "MLP":
        with pytest.raises(ValueError, match="is not a plain name"):
            tm.to(net)


H5_CHILD = """
import sys, tracemalloc, warnings
import nebulae
nebulae.Law.CORE = sys.argv[1]
from nebulae.astro import dock
from nebulae.cockpit.timemachine import TimeMachine
from tests.models.steps import mlp
net, tm = mlp(dock), TimeMachine(sys.argv[2], sys.argv[2])
net.export_weights()
tracemalloc.start()  # NumPy reports its array buffers to tracemalloc
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    tm.to(net, file="net.h5")
print(tracemalloc.get_traced_memory()[1] // 1024, "|".join(str(w.message) for w in caught))
"""


def test_an_unexpected_huge_dataset_in_a_weights_file_is_never_read(dock, engine, tmp_path):
    import h5py

    tm = TimeMachine(tmp_path, tmp_path)
    net = mlp(dock)
    _weights(net, 5.0)
    tm.drop(net, file="net.h5")
    big = 400 * 2**20  # 400 MiB of zeros, a few hundred KiB on disk
    with h5py.File(tmp_path / "net.h5", "a") as f:
        f.create_dataset("extra/blob", shape=(big // 4,), dtype="float32", chunks=(2**20,), compression="gzip")
        f["extra/blob"][:] = 0.0
    assert os.path.getsize(tmp_path / "net.h5") < big // 50
    args = [sys.executable, "-c", H5_CHILD, engine, str(tmp_path)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    grown_kib, message = done.stdout.strip().split(" ", 1)
    assert int(grown_kib) < 20 * 1024, f"reading allocated {int(grown_kib) // 1024} MiB at its peak"
    assert "extra/blob" in message and "unexpected" in message
    assert _value(tm, dock, file="net.h5") == 5.0


def test_a_full_disk_is_named_and_loses_nothing_already_saved(dock, engine, tmp_path, monkeypatch):
    tm = TimeMachine(tmp_path, tmp_path)
    net = mlp(dock)
    _weights(net, 1.0)
    tm.drop(net)
    tm.wait()
    monkeypatch.setenv("NEB_FAULT", "anchor.written=enospc")
    _weights(net, 2.0)
    tm.drop(net)
    with pytest.raises(RuntimeError, match=r"MLP-2.*failed: no space left on device in .*Earlier anchors are intact"):
        tm.wait()
    monkeypatch.delenv("NEB_FAULT")
    assert _value(tm, dock) == 1.0 and _hidden(tmp_path) == []


EXIT_CHILD = """
import sys
import numpy as np
import nebulae
nebulae.Law.CORE = sys.argv[1]
from nebulae.astro import dock
from nebulae.cockpit.timemachine import TimeMachine
from tests.models.steps import mlp
tm, net = TimeMachine(sys.argv[2], sys.argv[2]), mlp(dock)
tm.drop(net)
tm.wait()
tm.drop(net)  # still in flight when the script ends: finished by the exit hook, which fails
print("done", flush=True)
"""


@saves_finish_at_exit
def test_a_final_save_that_fails_at_exit_ends_the_process_with_status_1(engine, tmp_path):
    env = {**os.environ, "NEB_FAULT": "anchor.written@2=enospc"}
    args = [sys.executable, "-c", EXIT_CHILD, engine, str(tmp_path)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert done.stdout.strip() == "done" and done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert "no space left on device" in done.stderr and "exiting with status 1" in done.stderr
    assert sorted(e for e in os.listdir(tmp_path) if not e.startswith(".")) == [
        "MLP-1" + (".pth" if engine == "pytorch" else "")
    ]


def test_a_weights_file_with_an_extra_text_dataset_loads_and_reports_it(dock, tmp_path):
    import h5py

    tm = TimeMachine(tmp_path, tmp_path)
    net = mlp(dock)
    _weights(net, 6.0)
    tm.drop(net, file="net.h5")
    with h5py.File(tmp_path / "net.h5", "a") as f:
        f["notes"] = "trained on the digits set"
    twin = mlp(dock)
    with pytest.warns(UserWarning, match=r"unexpected keys \(1\): notes"):
        tm.to(twin, file="net.h5")
    assert {float(v.flat[0]) for v in twin.export_weights().values()} == {6.0}
    with h5py.File(tmp_path / "net.h5", "a") as f:
        del f["fc1/weight"]
        f["fc1/weight"] = np.full(net.export_weights()["fc1/weight"].shape, b"x")  # the right shape, text
    with pytest.raises(ValueError, match=r"dataset 'fc1/weight' holds .* values, not numbers"):
        tm.to(mlp(dock), file="net.h5")
