"""Worlds under faults (issue 17): a killed launcher, a killed / hung / exiting / raising rank.

Real processes run tests/worlds/fault_world.py (2 worlds, a tiny MLP, a collective per step); faults are
injected per rank and step through nebulae.faults (NEB_FAULT=world.rank1-step@3=kill) or WORLD_EXIT.
torch: the launcher spawns 2 gloo ranks. JAX: one process drives a 2-device mesh (an exception in it is
a WorldError too), or two processes (one device each) join through jax.distributed, as two hosts would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from nebulae.cockpit.launch import free_port
from tests.conftest import ROOT

WORLD = ROOT / "tests" / "worlds" / "fault_world.py"


def _env(core: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "NEB_FAULT")}
    env.update(PYTHONPATH=str(ROOT), NEB_CORE=core, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    env.update(extra)
    return env


def _gone(pid: int) -> bool:
    """The process has ended (a zombie waiting for its reaper counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def _pids(work, n: int, deadline: float) -> list[int]:
    while time.monotonic() < deadline:
        files = [work / f"pid-{r}" for r in range(n)]
        if all(f.exists() and f.read_text() for f in files):
            return [int(f.read_text()) for f in files]
        time.sleep(0.1)
    raise AssertionError("the ranks never started")


@pytest.fixture
def torch_only(engine):
    if engine != "pytorch":
        pytest.skip("process worlds are torch's form; the JAX pass tests the mesh")


@pytest.mark.timeout(60)
def test_torch_ranks_die_with_a_killed_launcher(torch_only, tmp_path):
    launcher = subprocess.Popen(
        [sys.executable, str(WORLD), str(tmp_path), "2", "100000"],
        cwd=ROOT,
        env=_env("pytorch"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ranks = _pids(tmp_path, 2, time.monotonic() + 40)
        time.sleep(0.5)  # training
        assert not any(_gone(p) for p in ranks)
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
        killed = time.monotonic()
        while not all(_gone(p) for p in ranks) and time.monotonic() - killed < 10:
            time.sleep(0.05)
        alive = [p for p in ranks if not _gone(p)]
        assert not alive, f"ranks {alive} outlived their launcher by 10 s"
    finally:
        launcher.kill()
        for f in tmp_path.glob("pid-*"):  # never leave a rank behind, whatever failed
            if f.read_text() and not _gone(int(f.read_text())):
                os.kill(int(f.read_text()), signal.SIGKILL)


def _run_world(tmp_path, timeout: str = "600", **extra: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run a torch world with a fault; returns the launcher's run and seconds from the faulty rank's
    death (or the fault) to the launcher's exit."""
    start = time.monotonic()
    run = subprocess.run(
        [sys.executable, str(WORLD), str(tmp_path), "2", "12", timeout],
        cwd=ROOT,
        env=_env("pytorch", **extra),
        capture_output=True,
        text=True,
        timeout=50,
    )
    return run, time.monotonic() - start


def _world_error(run: subprocess.CompletedProcess) -> str:
    assert run.returncode != 0
    text = run.stderr
    assert "nebulae.cockpit.launch.WorldError: " in text, text[-3000:]
    return text[text.index("nebulae.cockpit.launch.WorldError: ") :]


@pytest.mark.timeout(60)
def test_torch_a_killed_rank_is_blamed_not_its_peer(torch_only, tmp_path):
    run, _ = _run_world(tmp_path, NEB_FAULT="world.rank1-step@3=kill")
    error = _world_error(run)
    first = error.splitlines()[0]
    assert "rank 1 of 2 failed first (killed by signal SIGKILL)" in first, error[-3000:]
    assert "rank 0 of 2 failed" not in error


@pytest.mark.timeout(60)
def test_torch_a_raising_rank_is_blamed_with_its_traceback(torch_only, tmp_path):
    run, _ = _run_world(tmp_path, NEB_FAULT="world.rank1-step@3=raise")
    error = _world_error(run)
    assert "rank 1 of 2 failed first (it raised RuntimeError)" in error.splitlines()[0], error[-3000:]
    assert "RuntimeError: fault injected at world.rank1-step" in error
    assert "fault_world.py" in error  # its traceback


@pytest.mark.timeout(60)
def test_torch_an_exiting_rank_is_blamed_with_its_status(torch_only, tmp_path):
    run, _ = _run_world(tmp_path, WORLD_EXIT="1:3:7")
    first = _world_error(run).splitlines()[0]
    assert "rank 1 of 2 failed first (it exited with status 7)" in first, run.stderr[-3000:]
    run, _ = _run_world(tmp_path, WORLD_EXIT="1:3:0")  # leaving early, even cleanly, breaks the world
    first = _world_error(run).splitlines()[0]
    assert "rank 1 of 2 failed first (it exited with status 0 while the other ranks still needed it)" in first


@pytest.mark.timeout(60)
def test_torch_a_hung_rank_is_blamed_with_its_stack(torch_only, tmp_path):
    run, elapsed = _run_world(tmp_path, timeout="3", NEB_FAULT="world.rank1-step@3=hang")
    error = _world_error(run)
    first = error.splitlines()[0]
    assert "rank 1 of 2 failed first (it hung: rank 0 timed out waiting for it in a collective)" in first, error
    assert "its stack when it was stopped:" in error
    assert "in point" in error and "fault_world.py" in error  # where it hung: faults.point in the loop
    assert "rank 0: it timed out waiting for its peers" in error
    assert elapsed < 40


@pytest.fixture
def jax_only(engine):
    if engine != "jax":
        pytest.skip("the mesh is JAX's form")


def _raising(mv):
    mv.init()
    raise ValueError("boom in the mesh")


@pytest.mark.timeout(60)
def test_an_exception_in_a_world_of_this_process_is_a_world_error(engine):
    """JAX's 2-device mesh (and a one-world torch run) runs in this process: the same WorldError."""
    from nebulae.cockpit import Multiverse, WorldError

    nworld = 2 if engine == "jax" else 1
    with pytest.raises(WorldError) as caught:
        Multiverse(_raising, nworld)()
    text = str(caught.value)
    assert text.startswith("Multiverse: rank 0 of 1 failed first (it raised ValueError)")
    assert "ValueError: boom in the mesh" in text and "_raising" in text
    assert isinstance(caught.value.__cause__, ValueError)


def _jax_hosts(tmp_path, fault: str = "", steps: int = 30, **extra: str) -> tuple[list, float]:
    """fault_world.py as two JAX processes (one CPU device each) joined through jax.distributed."""
    address = f"127.0.0.1:{free_port()}"
    procs = []
    start = time.monotonic()
    for rank in range(2):
        env = _env("jax", JAX_COORDINATOR_ADDRESS=address, JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(rank), **extra)
        env.pop("XLA_FLAGS")
        if fault:
            env["NEB_FAULT"] = fault
        args = [sys.executable, str(WORLD), str(tmp_path), "2", str(steps), "30"]
        procs.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    runs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=90)
            runs.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    finally:  # a hung pair (today's main) is not left running
        for p in procs:
            p.kill()
    return runs, time.monotonic() - start


@pytest.mark.timeout(120)
def test_jax_hosts_a_raising_process_is_named_by_its_peer(jax_only, tmp_path):
    (first, second), elapsed = _jax_hosts(tmp_path, "world.rank1-step@3=raise")
    assert second.returncode == 1 and "RuntimeError: fault injected at world.rank1-step" in second.stderr
    error = _world_error(first)  # the survivor: a WorldError with the failed process's own account
    assert error.splitlines()[0].endswith("rank 1 of 2 failed first (it raised RuntimeError)."), error[-3000:]
    assert "RuntimeError: fault injected at world.rank1-step" in error and "fault_world.py" in error
    assert first.returncode == 1
    assert elapsed < 45  # was: still hung after 150 s


@pytest.mark.timeout(120)
def test_jax_hosts_a_killed_process_is_named_by_its_peer(jax_only, tmp_path):
    (first, second), elapsed = _jax_hosts(tmp_path, "world.rank1-step@3=kill")
    assert second.returncode == -signal.SIGKILL
    error = _world_error(first)
    line = error.splitlines()[0]
    assert "rank 1 of 2 failed first (it died without a word: killed, or its process exited)" in line, error[-3000:]
    assert "rank 0 lost it in a collective" in line and "Gloo" in line
    assert first.returncode == 1
    assert elapsed < 45  # was: SIGABRT after 91-104 s, no WorldError


@pytest.mark.timeout(120)
def test_jax_hosts_a_clean_run_ends_cleanly(jax_only, tmp_path):
    """The short heartbeat limit (10 s) and the exit hook leave a healthy 16 s run alone: both exit 0."""
    runs, _ = _jax_hosts(tmp_path, steps=40, STEP_SLEEP="0.4")
    for run in runs:
        assert run.returncode == 0, run.stderr[-3000:]
        assert "WorldError" not in run.stderr
