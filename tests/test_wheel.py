"""`nebulae demo --quick` and `nebulae bench --quick` from a freshly built wheel, outside the checkout, on both engines.

The wheel is built from this checkout and installed (`--no-deps`) into a new venv in a temporary folder.
The venv sees the engines and the other dependencies of this interpreter through a `.pth` line naming its
site-packages (GBs that are not downloaded again); that line adds the folder only, so the checkout's
editable-install hook in it does not run and `nebulae` comes from the wheel. Every command runs in the
temporary folder with no PYTHONPATH, as a user's would.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.once]
ENGINES = ("pytorch", "jax")


def _env() -> dict[str, str]:
    drop = ("PYTHONPATH", "NEB_CORE", "XLA_FLAGS", "OMP_NUM_THREADS", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run(cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd}\n{r.stdout[-6000:]}\n{r.stderr[-6000:]}"
    return r


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A new venv holding the wheel built from this checkout; returns its folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp), str(ROOT)]
    _run(build, tmp, 300)
    (wheel,) = tmp.glob("nebulae-*.whl")
    env = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env)], tmp, 120)
    python = env / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run([str(python), "-c", purelib], tmp, 60).stdout.strip())
    (site / "engines-of-the-test-interpreter.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)]
    _run(install, tmp, 300)
    return env


def test_the_wheel_is_what_runs(venv):
    code = "import nebulae, nebulae.demo, nebulae.benchmarks.run as r; print(nebulae.__file__); print(r.__file__)"
    r = _run([str(venv / "bin" / "python"), "-c", code], venv.parent, 120)
    for path in r.stdout.split():
        assert Path(path).is_relative_to(venv), r.stdout
    assert not Path(ROOT / "nebulae").samefile(Path(r.stdout.split()[0]).parent)


@pytest.mark.parametrize("engine", ENGINES)
def test_demo_quick_from_the_wheel(venv, engine):
    out = venv.parent / f"demo-{engine}"
    r = _run([str(venv / "bin" / "nebulae"), "demo", "--core", engine, "--quick", "--out", str(out)], venv.parent, 600)
    assert f"=== Nebulae demo on {engine}: done in" in r.stdout, r.stdout
    other = {"pytorch": "jax", "jax": "pytorch"}[engine]
    assert f"[{other}] loaded digits.h5 (written by {engine})" in r.stdout, r.stdout  # the other engine's process
    assert "agrees on 100.00 % of the held-out predictions" in r.stdout, r.stdout
    assert (out / engine / "ckpt" / "digits.h5").stat().st_size > 0


@pytest.mark.parametrize("engine", ENGINES)
def test_bench_quick_from_the_wheel(venv, engine):
    out = venv.parent / f"bench-{engine}"
    cmd = [str(venv / "bin" / "nebulae"), "bench", "--quick", "--engines", engine, "--out", str(out)]
    r = _run(cmd, venv.parent, 600)
    with open(out / "bench.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    suites = {"train_step", "dock_overhead", "checkpoint", "loader", "generator"}
    assert {row["suite"] for row in rows} == suites | ({"warm_start"} if engine == "jax" else set())
    assert not [row for row in rows if row["met"] == "FAILED"], r.stdout
    judged = [row for row in rows if row["target"]]
    assert judged and {row["met"] for row in judged} == {"no verdict (quick)"}  # a smoke run judges nothing
    assert "target missed" not in r.stdout and "smoke run" in r.stdout
    info = json.loads((out / "bench.json").read_text())
    assert info["command"].startswith("python -m nebulae bench --quick") and info["engines"] == [engine]
