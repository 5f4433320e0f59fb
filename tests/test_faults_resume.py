"""Resumes under faults, on both engines: a run killed after any drop inside a grad_accum cycle resumes bitwise
exactly, and every state of the cycle gets its own anchor name; a full disk is named; foreign names are refused."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from nebulae.cockpit import anchors
from nebulae.cockpit.timemachine import TimeMachine
from nebulae.kit.seeding import destine
from tests.conftest import ROOT
from tests.models.steps import mlp, train_dev

ACCUM, STEPS, FIRST = 3, 8, 3  # drops after steps 3, 4, 5: every position k of a grad_accum cycle

CHILD = """
import os, signal, sys
import nebulae
nebulae.Law.CORE = sys.argv[1]
from nebulae.astro import dock
from nebulae.cockpit.timemachine import TimeMachine
from tests.test_faults_resume import ACCUM, FIRST, _batch, _train
tm, train = TimeMachine(sys.argv[2], sys.argv[2]), _train(dock, 0)
for step in range(FIRST + ACCUM):
    train(*_batch(dock, step))
    if step + 1 >= FIRST:
        print(tm.drop(train), flush=True)
        tm.wait()
os.kill(os.getpid(), signal.SIGKILL)  # killed right after its last drop
"""


def _train(dock, seed: int):
    destine(seed)  # the weights and the engine's generators (torch draws dropout masks from its global one)
    net = mlp(dock, p_drop=0.25)  # BN statistics and dropout's random stream are part of the state too
    train, _ = train_dev(dock, net, "Adam", lr=1e-2, grad_accum=ACCUM)
    return train


def _batch(dock, step: int):
    rng = np.random.default_rng(100 + step)
    return dock.coat(rng.normal(size=(8, 12)).astype(np.float32)), dock.coat(rng.integers(0, 5, size=8))


def _weights(train) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in train.net.export_weights().items()}


@pytest.mark.timeout(120)
def test_a_kill_after_a_drop_anywhere_in_a_grad_accum_cycle_resumes_bitwise(dock, engine, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-c", CHILD, engine, str(tmp_path)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=100, cwd=ROOT)
    assert done.returncode == -9, done.stderr[-2000:]
    suffix = ".pth" if engine == "pytorch" else ""
    paths = done.stdout.split()
    # calls 3..5 with grad_accum=3: one update, then 1 and 2 micro-batches accumulated; call 6: the second update
    names = ["TRAIN-1", "TRAIN-1.4", "TRAIN-1.5", "TRAIN-2"]
    assert [os.path.basename(p) for p in paths] == [n + suffix for n in names]
    straight = _train(dock, 0)
    for step in range(STEPS):
        straight(*_batch(dock, step))
    tm = TimeMachine(tmp_path, tmp_path)
    for k, path in enumerate(paths, FIRST):
        resumed = _train(dock, 1)  # other initial weights: everything must come from the anchor
        landing = tm.to(resumed, file=os.path.basename(path))
        assert landing.step == k // ACCUM
        for step in range(k, STEPS):
            resumed(*_batch(dock, step))
        assert resumed.optz.updates == straight.optz.updates == STEPS // ACCUM
        mine, want = _weights(resumed), _weights(straight)
        assert mine.keys() == want.keys()
        for key in want:
            assert np.array_equal(mine[key], want[key]), f"resumed after step {k}: {key} differs"
    assert os.path.basename(tm.to(_train(dock, 1)).path) == "TRAIN-2" + suffix  # the newest


def test_anchor_names_off_a_grad_accum_boundary_order_and_rotate(tmp_path):
    S = anchors.Step
    assert anchors.step_of([]) is None
    assert anchors.step_of([(2, 6, 3)]) == S(2) and anchors.name("T", S(2)) == "T-2"  # a boundary: as before
    assert anchors.step_of([(2, 7, 3)]) == S(2, 7) and anchors.name("T", S(2, 7)) == "T-2.7"
    assert anchors.step_of([(1, 6, 3)]) == S(1, 6)  # an update was skipped: not the state named T-2 or T-1
    assert anchors.step_of([(2, 2, 1), (1, 1, 1)]) == S(2, 3)  # two optimizers that stand apart
    assert anchors.step_of([(2, 2, 1), (2, 4, 2)]) == S(2)
    for name in ("T-2.7.pth", "T-1.pth", "T-2.pth", "T-10.pth", "T-2.11.pth", "T-1.2.3.pth", "T-2..pth"):
        (tmp_path / name).write_bytes(b"")
    listed = anchors.listing(str(tmp_path), "T", ".pth", os.path.isfile)
    assert [os.path.basename(p) for _, p in listed] == ["T-1.pth", "T-2.pth", "T-2.7.pth", "T-2.11.pth", "T-10.pth"]
    assert [s for s, _ in listed] == [1, 2, 2, 2, 10]
    assert anchors.step_in(str(tmp_path / "T-2.7.pth"), "T", ".pth") == 2
    removed = anchors.rotate(str(tmp_path), "T", ".pth", 2, os.path.isfile, protect=str(tmp_path / "T-10.pth"))
    assert sorted(os.path.basename(p) for p in removed) == ["T-1.pth", "T-2.7.pth", "T-2.pth"]


# ------------------------------------------------------------------------ names, full disks, foreign datasets


def _fill(net, value: float) -> None:
    net.import_weights({k: np.full_like(v, value) for k, v in net.export_weights().items()})


def test_a_disk_that_fills_up_inside_torchs_zip_writer_is_named(dock, engine, tmp_path, monkeypatch):
    if engine != "pytorch":
        pytest.skip("torch's zip writer: on JAX Orbax writes (its full disk: tests/test_faults_anchors.py)")
    tm = TimeMachine(tmp_path, tmp_path, max_anchors=1)
    net = mlp(dock)
    _fill(net, 1.0)
    tm.drop(net, file="keep")
    tm.drop(net)
    tm.wait()
    monkeypatch.setenv("NEB_FAULT", "anchor.writing@2=enospc")  # torch says only 'unexpected pos ... vs ...'
    _fill(net, 2.0)
    tm.drop(net, file="keep")
    with pytest.raises(RuntimeError, match=r"keep\.pth' failed: no space left on device in .* \(writing about \d+ b"):
        tm.wait()
    monkeypatch.delenv("NEB_FAULT")
    assert sorted(os.listdir(tmp_path)) == ["MLP-1.pth", "keep.pth"]  # no leftover, nothing rotated or lost
    twin = mlp(dock)
    tm.to(twin, file="keep")
    assert {float(v.flat[0]) for v in twin.export_weights().values()} == {1.0}


def test_a_full_disk_while_writing_a_weights_file_is_named_and_keeps_the_old_one(dock, tmp_path, monkeypatch):
    tm = TimeMachine(tmp_path, tmp_path)
    net = mlp(dock)
    _fill(net, 1.0)
    tm.drop(net, file="net.h5")
    monkeypatch.setenv("NEB_FAULT", "neutral.writing=enospc")
    _fill(net, 2.0)
    with pytest.raises(RuntimeError, match=r"net\.h5' failed: no space left on device .*Earlier anchors are intact"):
        tm.drop(net, file="net.h5")
    monkeypatch.delenv("NEB_FAULT")
    assert os.listdir(tmp_path) == ["net.h5"]
    twin = mlp(dock)
    tm.to(twin, file="net.h5")
    assert {float(v.flat[0]) for v in twin.export_weights().values()} == {1.0}


RSS_CHILD = """
import sys, warnings
import nebulae
nebulae.Law.CORE = sys.argv[1]
from nebulae.astro import dock
from nebulae.cockpit.timemachine import TimeMachine
from tests.models.steps import mlp
net, tm = mlp(dock), TimeMachine(sys.argv[2], sys.argv[2])
tm.to(net, file="small.h5")  # first a file without the blob: imports and first-use allocations (RSS is a peak)
def peak_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the peak (VmHWM) to the resident size now: imports' transient peaks do not hide a read
before = peak_kib()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    landing = tm.to(net, file="net.h5")
grown = peak_kib() - before
print(grown, landing.report.unexpected, "|".join(str(w.message) for w in caught))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="the peak RSS is reset through Linux's /proc")
@pytest.mark.timeout(120)
def test_an_unexpected_big_dataset_is_reported_from_metadata_and_never_read(dock, engine, tmp_path):
    import h5py

    tm = TimeMachine(tmp_path, tmp_path)
    tm.drop(mlp(dock), file="net.h5")
    tm.drop(mlp(dock), file="small.h5")
    with h5py.File(tmp_path / "net.h5", "a") as f:  # 200 MiB of zeros, well under 1 MiB on disk
        blob = f.create_dataset("junk/blob", shape=(50 * 2**20,), dtype="float32", chunks=(2**20,), compression="gzip")
        blob[:] = 0.0
    assert os.path.getsize(tmp_path / "net.h5") < 2**20
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-c", RSS_CHILD, engine, str(tmp_path)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=100, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    grown_kib, unexpected, message = done.stdout.strip().split(" ", 2)
    assert int(grown_kib) < 32 * 1024, f"the peak RSS grew by {int(grown_kib) // 1024} MiB: the dataset was read"
    assert unexpected == "['junk/blob']" and "unexpected keys (1): junk/blob" in message
