"""cockpit.TimeMachine on the bound engine: exact resume in a new process, crash safety, rotation across
processes, strictness, scopes, refusing foreign files, asynchronous saves; .h5 across engines (once).

Helpers whose names start with `child_` run in fresh interpreters (`run_python`), which import this module.
"""

from __future__ import annotations

import csv
import os
import pickle
import signal
import subprocess
import sys
import time
import warnings

import h5py
import numpy as np
import pytest

from nebulae.astro import init
from nebulae.cockpit import anchors
from nebulae.cockpit.timemachine import AnchorMismatchError, TimeMachine
from tests.conftest import ROOT, assert_close, run_python, saves_finish_at_exit
from tests.models.steps import mlp, train_dev

try:
    from nebulae.fuel.depot import Tank
except ImportError:  # the Tank lands in another change; a NumPy list stands in for it meanwhile
    Tank = None

N = 6  # steps before the anchor, and after it
ROWS = 40
FEATURES = np.random.default_rng(1).normal(size=(ROWS, 12)).astype(np.float32)


# ---------------------------------------------------------------------------------------------- helpers


def _dock(engine: str):
    from nebulae.astro import dock

    dock.Craft  # noqa: B018 (binds NEB_CORE's engine)
    return dock


def _suffix(engine: str) -> str:
    return ".pth" if engine == "pytorch" else ""


class ListTank:
    """A stand-in for fuel.depot.Tank: a fixed NumPy list of batches with state()/restore()."""

    def __init__(self, batch_size: int = 4, seed: int = 5):
        rng = np.random.default_rng(seed)
        self.batches = [rng.permutation(ROWS)[:batch_size] for _ in range(64)]
        self.position = 0

    def next(self) -> dict:
        idx = self.batches[self.position]
        self.position += 1
        return {"idx": idx, "label": idx % 5}

    def state(self) -> dict:
        return {"position": self.position}

    def restore(self, state: dict) -> None:
        self.position = int(state["position"])

    def close(self) -> None:
        pass


def _write_csv(folder) -> str:
    path = os.path.join(folder, "rows.csv")
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["idx", "label"])
        out.writerows([i, i % 5] for i in range(ROWS))
    return path


def _tank(csv_path: str):
    if Tank is None:
        return ListTank()
    return Tank(csv_path, {"idx": "int64", "label": "int64"}, batch_size=4, shuffle=True, seed=5)


def _build(dock, csv_path: str):
    """The resume workload: MLP with BN and dropout, Adam + cosine schedule + warm-up, EMA; and its Tank."""
    net = mlp(dock, p_drop=0.2)
    train, _ = train_dev(dock, net, "Adam", lr=1e-2, lr_decay=dock.CosLR(12), warmup=3, ema=0.9)
    return net, train, _tank(csv_path)


def _run(dock, train, tank, steps: int) -> list[np.ndarray]:
    seen = []
    for _ in range(steps):
        batch = tank.next()
        idx = np.asarray(batch["idx"])
        train(dock.coat(FEATURES[idx]), dock.coat(np.asarray(batch["label"])))
        seen.append(idx)
    return seen


def snapshot(craft) -> dict[str, np.ndarray]:
    """Everything a craft holds, flattened to NumPy: torch state dict (extra states too) + RNG; JAX Variables."""
    if _is_jax(craft):
        from flax import nnx

        return {
            "/".join(map(str, p)): np.array(v.get_raw_value(), copy=True)
            for p, v in nnx.iter_graph(craft)
            if isinstance(v, nnx.Variable)
        }
    import torch

    out = {}
    _flatten(craft.state_dict(), "state", out)
    out["rng"] = torch.get_rng_state().numpy()
    return out


def _is_jax(craft) -> bool:
    return any(c.__module__.startswith("nebulae.backends.jax") for c in type(craft).__mro__)


def _flatten(obj, prefix: str, out: dict) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(v, f"{prefix}/{k}", out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _flatten(v, f"{prefix}/{i}", out)
    elif hasattr(obj, "detach"):
        out[prefix] = obj.detach().cpu().numpy().copy()
    elif obj is None or isinstance(obj, str):
        out[prefix] = np.asarray(str(obj))
    else:
        out[prefix] = np.asarray(obj)


def _same(a: dict, b: dict, engine: str) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        if engine == "pytorch" or a[key].dtype.kind not in "fc":
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)  # bitwise on CPU torch
        else:
            np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-6, err_msg=key)


def _x(n: int, d: int = 12) -> np.ndarray:
    return np.random.default_rng(n).normal(size=(n, d)).astype(np.float32)


def _quiet_to(tm, craft, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean anchor gives no warning
        return tm.to(craft, **kwargs)


# ---------------------------------------------------------------------------------------------- resume


def child_resume(engine: str, folder: str, csv_path: str, out: str) -> None:
    """The NEW process: build everything from other seeds, travel back to the anchor, train N more steps."""
    dock = _dock(engine)
    init.seed(123)
    if engine == "pytorch":
        import torch

        torch.manual_seed(999)
    _, train, tank = _build(dock, csv_path)
    landing = _quiet_to(TimeMachine(folder, folder), train, tank=tank)
    assert landing.step == N, landing
    seen = _run(dock, train, tank, N)
    tank.close()
    np.savez(out, **snapshot(train), **{f"batch/{i}": b for i, b in enumerate(seen)})


def test_resume_in_a_new_process_is_exact(dock, engine, tmp_path):
    csv_path = _write_csv(tmp_path)
    folder = str(tmp_path / "ckpt")
    init.seed(0)
    _, train, tank = _build(dock, csv_path)
    _run(dock, train, tank, N)
    tm = TimeMachine(folder, folder)
    path = tm.drop(train, tank=tank)
    assert os.path.basename(path) == f"TRAIN-{N}{_suffix(engine)}"  # named by the optimizer's update count
    seen = _run(dock, train, tank, N)  # the same process carries on: 2N steps in one process
    tm.wait()
    tank.close()
    reference = {**snapshot(train), **{f"batch/{i}": b for i, b in enumerate(seen)}}

    out = str(tmp_path / "resumed.npz")
    code = f"from tests.test_cockpit_timemachine import child_resume; child_resume({engine!r}, {folder!r}, "
    code += f"{csv_path!r}, {out!r})"
    res = run_python(code, env={"NEB_CORE": engine})
    assert res.returncode == 0, res.stderr[-4000:]
    resumed = dict(np.load(out))
    assert any("ema" in k for k in reference) and any("optz" in k for k in reference)
    _same(reference, resumed, engine)


@pytest.mark.parametrize("donate", ["1", "0"])
def test_drop_then_train_at_once_keeps_the_drop_time_values(dock, engine, tmp_path, monkeypatch, donate):
    monkeypatch.setenv("NEB_JAX_DONATE", donate)  # JAX: donated (as on a GPU) or not (CPU's default)
    init.seed(0)
    net = mlp(dock, in_chs=256, hidden=1024, p_drop=0.2)
    train, _ = train_dev(dock, net, "Adam", lr=1e-2, ema=0.9)
    x = dock.coat(np.random.default_rng(0).normal(size=(8, 256)).astype(np.float32))
    z = dock.coat(np.arange(8) % 5)
    train(x, z)
    at_drop = snapshot(train)
    tm = TimeMachine(tmp_path, tmp_path)
    tm.drop(train)
    for _ in range(3):  # on JAX with donation these steps donate the very buffers being saved
        train(x, z)
    tm.wait()
    key = "net/fc1/weight" if engine == "jax" else "state/net.fc1.weight"
    assert not np.array_equal(snapshot(train)[key], at_drop[key])  # the steps did change the weights
    fresh = mlp(dock, in_chs=256, hidden=1024, p_drop=0.2)
    twin, _ = train_dev(dock, fresh, "Adam", lr=1e-2, ema=0.9)
    _quiet_to(tm, twin)
    _same(at_drop, snapshot(twin), engine)


# ---------------------------------------------------------------------------------------------- crash


def _big(dock):
    class Big(dock.Craft):
        def __init__(self):
            super().__init__("BIG")
            self.fc = dock.Dense(4096, 8192)  # 128 MiB of float32

        def run(self, x):
            return self.fc(x)

    return Big()


def _digest(craft) -> float:
    return float(sum(v.astype(np.float64).sum() + v.ravel()[::997].sum() for v in craft.export_weights().values()))


def child_crash(engine: str, folder: str) -> None:
    """Drop BIG-1, change the weights, announce, then drop BIG-2 (which the parent kills)."""
    dock = _dock(engine)
    init.seed(0)
    net = _big(dock)
    tm = TimeMachine(folder, folder)
    tm.drop(net)
    tm.wait()
    print("DIGEST", repr(_digest(net)), flush=True)
    net.import_weights({k: v + 1.0 for k, v in net.export_weights().items()})
    print("SAVING", flush=True)
    tm.drop(net)
    tm.wait()
    print("DONE", flush=True)


def _temporaries(folder: str) -> list[str]:
    return [e for e in os.listdir(folder) if e.startswith(".") or "orbax-checkpoint-tmp" in e]


def _kill_mid_drop(engine: str, folder: str) -> tuple[float, bool]:
    """Run child_crash and SIGKILL it once BIG-2's temporary data is being written; (digest of BIG-1, landed)."""
    env = {k: v for k, v in os.environ.items() if k != "NEB_CORE"}
    env.update(NEB_CORE=engine, PYTHONPATH=str(ROOT))
    code = f"from tests.test_cockpit_timemachine import child_crash; child_crash({engine!r}, {folder!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    digest = None
    try:
        for line in proc.stdout:
            if line.startswith("DIGEST"):
                digest = float(line.split()[1])
            if line.startswith("SAVING"):
                break
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            busy = [e for e in _temporaries(folder) if _size(os.path.join(folder, e)) > 1 << 20]
            if busy:
                break
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()
    assert digest is not None, "the child failed before its first anchor"
    landed = not os.path.exists(os.path.join(folder, f"BIG-2{_suffix(engine)}"))
    return digest, landed


def _size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def test_a_kill_during_drop_leaves_the_previous_anchor_intact(dock, engine, tmp_path):
    for attempt in range(3):
        folder = str(tmp_path / f"try{attempt}")
        digest, landed = _kill_mid_drop(engine, folder)
        if landed:
            break
    assert landed, "the kill never landed inside the second drop"
    suffix = _suffix(engine)
    from nebulae.cockpit.timemachine import _backend_of

    module = _backend_of(_big(dock)).anchor
    assert _temporaries(folder), "the killed drop left no temporary data behind (it was not mid-write)"
    listed = anchors.listing(folder, "BIG", suffix, module.is_complete)
    assert [os.path.basename(p) for _, p in listed] == [f"BIG-1{suffix}"]  # temporaries are no anchors
    init.seed(5)
    net = _big(dock)
    tm = TimeMachine(folder, folder)
    landing = _quiet_to(tm, net)
    assert os.path.basename(landing.path) == f"BIG-1{suffix}"
    assert _digest(net) == pytest.approx(digest, rel=1e-12)
    tm.drop(net)  # a later drop sweeps the dead process's temporaries (on JAX: Orbax's too)
    tm.wait()
    assert not [e for e in os.listdir(folder) if e.startswith(".") or "orbax-checkpoint-tmp" in e]


# ---------------------------------------------------------------------------------------------- rotation


def child_rotation(engine: str, folder: str, drops: int) -> None:
    """A plain craft (no optimizer: numbered after the folder's anchors) dropped `drops` times; no explicit wait."""
    dock = _dock(engine)
    net = mlp(dock)
    tm = TimeMachine(folder, folder, max_anchors=2)
    for i in range(drops):
        net.import_weights({k: v * 0 + i for k, v in net.export_weights().items()})
        tm.drop(net)
    # the interpreter's exit finishes the last save and rotates


@saves_finish_at_exit
def test_rotation_keeps_the_newest_across_processes(engine, tmp_path):
    folder = str(tmp_path)
    names = []
    for drops in (3, 2):
        code = f"from tests.test_cockpit_timemachine import child_rotation; child_rotation({engine!r}, {folder!r}, "
        res = run_python(code + f"{drops})", env={"NEB_CORE": engine})
        assert res.returncode == 0, res.stderr[-4000:]
        names.append(sorted(e for e in os.listdir(folder) if not e.startswith(".")))
    s = _suffix(engine)
    assert names == [[f"MLP-2{s}", f"MLP-3{s}"], [f"MLP-4{s}", f"MLP-5{s}"]]


# ---------------------------------------------------------------------------------------------- strictness


def test_missing_unexpected_and_mismatched_keys_are_named(dock, tmp_path):
    tm = TimeMachine(tmp_path, tmp_path)
    with_bn, without_bn, narrow = mlp(dock), mlp(dock, bn=False), mlp(dock, hidden=8)
    tm.drop(with_bn, file="bn")
    tm.drop(without_bn, file="plain")
    with pytest.warns(UserWarning, match=r"unexpected keys \(5\): bn/"):
        landing = tm.to(mlp(dock, bn=False), file="bn")
    assert "bn/running_mean" in landing.report.unexpected
    with pytest.warns(UserWarning, match=r"missing keys \(4\): .*bn/running_var"):
        tm.to(mlp(dock), file="plain.pth")
    with pytest.warns(UserWarning, match=r"shape mismatches.*fc1/weight \(craft \(8, 12\), anchor \(16, 12\)\)"):
        tm.to(narrow, file="bn")
    target = mlp(dock, bn=False)
    before = target.export_weights()
    with pytest.raises(AnchorMismatchError, match=r"frozen=True.*unexpected keys.*bn/weight.*nothing was loaded"):
        tm.to(target, file="bn", frozen=True)
    for key, value in target.export_weights().items():
        np.testing.assert_array_equal(value, before[key])  # frozen: nothing loaded
    with pytest.raises(KeyError):  # also catchable as KeyError / ValueError
        tm.to(mlp(dock), file="plain", frozen=True)


def test_scopes_select_by_path_with_a_slash_boundary(dock, engine, tmp_path):
    init.seed(0)
    net = mlp(dock)
    train, _ = train_dev(dock, net, "Adam", lr=1e-2)
    x, z = dock.coat(_x(4)), dock.coat(np.arange(4) % 5)
    train(x, z)
    tm = TimeMachine(tmp_path, tmp_path)
    with pytest.raises(ValueError, match="nothing to save within scope 'ne'"):
        tm.drop(train, save_scope="ne")  # 'ne' is no prefix of 'net/...': a '/' boundary
    tm.drop(train, file="net-only", save_scope="net")
    tm.drop(train, file="all")
    saved_net = net.export_weights()
    train(x, z)
    train(x, z)
    assert train.optz.updates == 3
    _quiet_to(tm, train, file="net-only", ckpt_scope="net")
    assert train.optz.updates == 3  # outside the scope: untouched
    _same(saved_net, net.export_weights(), engine)
    train(x, z)
    _quiet_to(tm, train, file="all", ckpt_scope="net/fc1")  # only fc1 comes back from the full anchor
    now = net.export_weights()
    np.testing.assert_array_equal(now["fc1/weight"], saved_net["fc1/weight"])
    assert not np.array_equal(now["fc2/weight"], saved_net["fc2/weight"])
    with pytest.warns(UserWarning, match="missing keys"):
        tm.to(train, file="net-only")  # a partial anchor loaded whole reports what it lacks
    assert train.optz.updates == 4


# ---------------------------------------------------------------------------------------------- foreign files


class _Trap:
    """Unpickling this creates a marker file (what a malicious checkpoint would do)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_foreign_and_malicious_files_are_refused_never_executed(dock, engine, tmp_path):
    marker = tmp_path / "pwned"
    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"state": _Trap(str(marker))}, f)
    files = ["evil.pth"]
    if engine == "pytorch":
        import torch

        torch.save({"nebulae": {}, "state": {"x": _Trap(str(marker))}}, tmp_path / "evil_zip.pth")
        torch.save({"fc1.weight": torch.zeros(2)}, tmp_path / "bare.pth")
        files.append("evil_zip.pth")
    tm = TimeMachine(tmp_path, tmp_path)
    for name in files:
        with pytest.raises(ValueError, match=r"(not a Nebulae checkpoint.*NOT executed|not a JAX anchor.*unpickled)"):
            tm.to(mlp(dock), file=name)
    assert not marker.exists()
    if engine == "pytorch":
        with pytest.raises(ValueError, match="no 'nebulae' marker"):
            tm.to(mlp(dock), file="bare")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["fc1/weight"] = np.zeros((16, 12), np.float32)
    with pytest.raises(ValueError, match="not a Nebulae weights file"):
        tm.to(mlp(dock), file="other.h5")
    with pytest.raises(FileNotFoundError, match="no anchor 'missing'"):
        tm.to(mlp(dock), file="missing")
    with pytest.raises(FileNotFoundError, match=r"no anchor of scope 'MLP'"):
        TimeMachine(tmp_path / "empty", tmp_path / "empty").to(mlp(dock))


# ---------------------------------------------------------------------------------------------- other behaviour


def test_ema_switched_on_is_refused(dock, tmp_path):
    net = mlp(dock)
    train, _ = train_dev(dock, net, "Adam", lr=1e-2, ema=0.9)
    train(dock.coat(_x(4)), dock.coat(np.arange(4) % 5))
    tm = TimeMachine(tmp_path, tmp_path)
    train.ema.on()
    with pytest.raises(RuntimeError, match=r"EMA at 'ema' is switched on.*off\(\)"):
        tm.drop(train)
    with pytest.raises(RuntimeError, match="switched on"):
        tm.to(train, file="x")
    train.ema.off()
    assert os.path.basename(tm.drop(train)).startswith("TRAIN-1")


def test_same_step_is_replaced_and_named_anchors_resolve(dock, engine, tmp_path):
    tm = TimeMachine(tmp_path, tmp_path, max_anchors=1)
    net = mlp(dock)
    first = tm.drop(net, file="MLP-7")
    net.import_weights({k: v + 1 for k, v in net.export_weights().items()})
    assert tm.drop(net, file="MLP-7") == first  # the same name again: replaced atomically
    tm.drop(net, file="best.pth")
    tm.wait()
    assert sorted(os.listdir(tmp_path)) == sorted([f"MLP-7{_suffix(engine)}", f"best{_suffix(engine)}"])
    for name in ("MLP-7", f"MLP-7{_suffix(engine)}", "best", "best.pth", ""):
        twin = mlp(dock)
        _quiet_to(tm, twin, file=name)
        _same(net.export_weights(), twin.export_weights(), engine)
    twin = mlp(dock)
    _quiet_to(TimeMachine(first, tmp_path), twin)  # a ckpt_path that is itself an anchor
    _same(net.export_weights(), twin.export_weights(), engine)


def test_background_errors_surface_at_the_next_wait(dock, tmp_path, monkeypatch):
    from nebulae.cockpit import timemachine

    class Failing:
        path = str(tmp_path / "MLP-1")

        def wait(self):
            raise RuntimeError("disk full (simulated)")

    module = timemachine._backend_of(mlp(dock)).anchor
    monkeypatch.setattr(module, "save", lambda *a, **k: Failing())
    tm = TimeMachine(tmp_path, tmp_path)
    tm.drop(mlp(dock))  # returns: the failure happens "in the background"
    with pytest.raises(RuntimeError, match="disk full"):
        tm.wait()
    tm.wait()  # reported once


def test_neutral_h5_holds_paths_and_metadata(dock, engine, tmp_path):
    net = mlp(dock)
    train, _ = train_dev(dock, net, "Adam", lr=1e-2)
    train(dock.coat(_x(4)), dock.coat(np.arange(4) % 5))
    tm = TimeMachine(tmp_path, tmp_path)
    path = tm.drop(train, file="w.h5", save_scope="net")
    with h5py.File(path, "r") as f:
        assert f.attrs["engine"] == engine and f.attrs["step"] == 1 and f.attrs["nebulae_format"] == 1
        assert f.attrs["version"]
        assert f["net/fc1/weight"].shape == (16, 12) and "net/bn/running_var" in f
    twin = mlp(dock)
    with pytest.warns(UserWarning, match="unexpected keys"):  # keys carry the step craft's 'net/' prefix
        tm.to(twin, file="w.h5")
    landing = _quiet_to(tm, train, file="w.h5", ckpt_scope="net")
    assert landing.step == 1 and landing.engine == engine


@pytest.mark.once
def test_h5_moves_a_trained_model_between_engines(both, tmp_path):
    tdock, jdock = both
    x = np.random.default_rng(3).normal(size=(6, 12)).astype(np.float32)
    z = np.arange(6) % 5
    for src, dst in ((tdock, jdock), (jdock, tdock)):
        init.seed(0)
        net = mlp(src, p_drop=0.2)
        train, dev = train_dev(src, net, "Adam", lr=1e-2)
        for _ in range(3):
            train(src.coat(x), src.coat(z))
        tm = TimeMachine(tmp_path, tmp_path)
        tm.drop(net, file="moved.h5")
        init.seed(9)
        other = mlp(dst, p_drop=0.2)
        _quiet_to(tm, other, file="moved.h5")
        with src.Nozzle():
            expected = src.shell(dev(src.coat(x)))
        with dst.Nozzle():
            got = dst.shell(other(dst.coat(x)))
        assert_close(got, expected, rtol=1e-5, atol=1e-5, what=f"{src.__name__} -> {dst.__name__}")


@pytest.mark.once
def test_anchor_listing_rotation_and_sweep_rules(tmp_path):
    for name in ("A-1.pth", "A-2.pth", "A-10.pth", "AB-3.pth", "A-x.pth", "A-4.pth.orbax-checkpoint-tmp", "B-9.pth"):
        (tmp_path / name).write_bytes(b"")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    mine = anchors.temporary(str(tmp_path / "A-5.pth"))
    theirs = anchors.temporary(str(tmp_path / "A-6.pth")).replace(f"-{os.getpid()}-", f"-{dead.stdout.strip()}-")
    elsewhere = theirs.replace(f".tmp-{anchors._HOST}-", ".tmp-otherhost-")
    for path in (mine, theirs, elsewhere):
        open(path, "wb").close()
    listed = anchors.listing(str(tmp_path), "A", ".pth", os.path.isfile)
    assert [s for s, _ in listed] == [1, 2, 10]  # numeric order; temporaries and other scopes excluded
    assert anchors.step_in(str(tmp_path / "A-10.pth"), "A", ".pth") == 10
    assert anchors.step_in(str(tmp_path / "AB-3.pth"), "A", ".pth") is None
    removed = anchors.rotate(str(tmp_path), "A", ".pth", 2, os.path.isfile, protect=str(tmp_path / "A-1.pth"))
    assert [os.path.basename(p) for p in removed] == ["A-2.pth"]  # the just-written one is kept, then the newest
    assert anchors.sweep(str(tmp_path)) == [theirs]  # only a dead process of this host
    assert os.path.exists(mine) and os.path.exists(elsewhere)
