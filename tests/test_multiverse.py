"""cockpit.Multiverse: data-parallel training on both engines.

torch: 2 gloo processes (spawned by Multiverse, or started by torchrun) training on B/2 each end
with the weights of one process on batch B; reduce's mean and sum; a failing or killed rank makes
the launch raise quickly with its traceback. JAX: a 2-device mesh (XLA_FLAGS gives the CPU two
devices): the sharded step equals the single-device step, the state is replicated and the batch
split, and the step is traced once. The brochure's distributed example runs on both engines and
gives the same losses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import ROOT, assert_close

WORLD = ROOT / "tests" / "worlds" / "mlp_world.py"
BROCHURE = ROOT / "tests" / "worlds" / "brochure_world.py"
STEPS, BATCH = 4, 8
PROBES = ("chunk_mean", "chunk_sum", "rank_mean", "rank_sum")


def _env(core: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(PYTHONPATH=str(ROOT), NEB_CORE=core, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    return env


def _script(args: list, core: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *map(str, args)], cwd=ROOT, env=_env(core), capture_output=True, text=True, timeout=timeout
    )


def _reference(tmp_path, mode: str) -> dict:
    """One world on the full batch, in this process."""
    from nebulae.cockpit import Multiverse
    from tests.worlds import mlp_world

    out = tmp_path / f"one-{mode}.npz"
    Multiverse(mlp_world.launch, 1)(str(out), STEPS, BATCH, mode)
    return dict(np.load(out))


def _assert_same_training(one: dict, many: dict) -> None:
    weights = [k for k in one if k not in PROBES]
    assert "fc1/weight" in weights and "losses" in weights
    for key in weights:
        assert_close(many[key], one[key], what=key)
    assert not np.allclose(one["fc1/weight"], 0)


def _assert_chunks_reduced(many: dict) -> None:
    half = np.arange(BATCH, dtype=np.float32).reshape(2, BATCH // 2)
    assert_close(many["chunk_mean"], half.mean(0), what="reduce mean")
    assert_close(many["chunk_sum"], half.sum(0), what="reduce sum")


@pytest.fixture
def torch_only(engine):
    if engine != "pytorch":
        pytest.skip("process worlds are torch's form; the JAX pass tests the mesh")


def test_torch_two_spawned_gloo_worlds_equal_one_process(torch_only, tmp_path):
    """With BN synchronised over the worlds (sync_bn), B/2 per world == one process on B."""
    out = tmp_path / "two.npz"
    run = _script([WORLD, out, 2, STEPS, BATCH, "bn"], "pytorch")
    assert run.returncode == 0, run.stderr[-3000:]
    many = dict(np.load(out))
    _assert_same_training(_reference(tmp_path, "bn"), many)
    assert "bn/running_var" in many
    _assert_chunks_reduced(many)
    assert many["rank_mean"] == pytest.approx(1.5) and many["rank_sum"] == pytest.approx(3.0)


def test_torch_runs_unchanged_under_torchrun(torch_only, tmp_path):
    out = tmp_path / "torchrun.npz"
    cmd = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", WORLD, out, 2, STEPS, BATCH]
    run = _script(cmd, "pytorch")
    assert run.returncode == 0, run.stderr[-3000:]
    many = dict(np.load(out))
    _assert_same_training(_reference(tmp_path, "train"), many)
    assert many["rank_sum"] == pytest.approx(3.0)


@pytest.mark.parametrize(
    "mode, needle", [("fail", "ValueError: boom from rank 1"), ("die", "killed by signal SIGKILL")]
)
def test_torch_a_failing_rank_stops_the_world(torch_only, tmp_path, mode, needle):
    start = time.monotonic()
    run = _script([WORLD, tmp_path / "x.npz", 2, STEPS, BATCH, mode], "pytorch", timeout=90)
    elapsed = time.monotonic() - start
    assert run.returncode != 0
    assert "WorldError: Multiverse: rank 1 of 2 failed" in run.stderr, run.stderr[-3000:]
    assert needle in run.stderr
    assert elapsed < 60
    assert not (tmp_path / "x.npz").exists()


def test_torch_universe_that_cannot_reach_new_processes_is_refused(torch_only):
    from nebulae.cockpit import Multiverse

    def nested(mv):
        return None

    with pytest.raises(TypeError, match="nested.*cannot be sent to new processes"):
        Multiverse(nested, 2)()


def test_bad_nworld_is_refused():
    from nebulae.cockpit import Multiverse

    with pytest.raises(ValueError, match="nworld must be a positive integer, got 0"):
        Multiverse(print, 0)
    with pytest.raises(TypeError, match="main function"):
        Multiverse("launch", 2)


@pytest.fixture
def jax_only(engine):
    if engine != "jax":
        pytest.skip("the mesh is JAX's form; the torch pass tests process worlds")


@pytest.mark.parametrize("mode", ["train", "bn"])
def test_jax_two_device_mesh_equals_one_device(jax_only, tmp_path, mode):
    from nebulae.cockpit import Multiverse
    from tests.worlds import mlp_world

    out = tmp_path / "mesh.npz"
    Multiverse(mlp_world.launch, 2)(str(out), STEPS, BATCH, mode)
    many = dict(np.load(out))
    _assert_same_training(_reference(tmp_path, mode), many)
    _assert_chunks_reduced(many)
    assert many["rank_mean"] == pytest.approx(1.0) and many["rank_sum"] == pytest.approx(1.0)  # one process


def _mesh_launch(mv, seen: dict):
    import jax
    from flax import nnx
    from jax.sharding import PartitionSpec

    from nebulae.astro import dock, init
    from tests.models.steps import mlp, train_dev

    mv.init()
    init.seed(1)
    net = mv.sync(mlp(dock, in_chs=6, hidden=8, nclass=3))
    train, dev = train_dev(dock, net, "Adam", lr=1e-2)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = dock.coat(rng.standard_normal((8, 6)).astype(np.float32))
        loss = train(x, dock.coat(rng.integers(0, 3, 8)))
    seen["x"] = x.sharding
    seen["loss"] = loss.sharding
    seen["traces"] = train.traces
    seen["state"] = [v.get_raw_value().sharding for _, v in nnx.iter_graph(train) if isinstance(v, nnx.Variable)]
    seen["spec"] = PartitionSpec
    seen["devices"] = len(jax.devices())


def test_jax_state_replicated_batch_sharded_one_trace(jax_only):
    from nebulae.cockpit import Multiverse

    seen: dict = {}
    Multiverse(_mesh_launch, 2)(seen)
    P = seen["spec"]
    assert seen["devices"] == 2
    assert seen["x"].spec == P("data") and len(seen["x"].device_set) == 2
    assert seen["state"] and all(s.is_fully_replicated and len(s.device_set) == 2 for s in seen["state"])
    assert seen["loss"].is_fully_replicated
    assert seen["traces"] == 1
    from nebulae.backends.jax import tensor, universe

    assert universe.mesh() is None and tensor._sharding is None  # the launch left no mesh behind


def test_jax_batch_not_divisible_by_worlds_is_refused(jax_only):
    from nebulae.astro import dock
    from nebulae.cockpit import Multiverse, WorldError

    def launch(mv):
        mv.sync(dock.Dense(2, 2))
        dock.coat(np.zeros((3, 2), np.float32))

    with pytest.raises(WorldError, match=r"shape \(3, 2\) cannot be split over the 2 devices"):
        Multiverse(launch, 2)()


@pytest.mark.once
def test_brochure_example_runs_on_both_engines_with_two_worlds(tmp_path):
    results = {}
    for core in ("pytorch", "jax"):
        work = tmp_path / core
        work.mkdir()
        run = _script([BROCHURE, work, 2], core)
        assert run.returncode == 0, f"{core}: {run.stderr[-3000:]}"
        results[core] = json.loads((work / "result.json").read_text())
        suffix = ".pth" if core == "pytorch" else ""
        assert sorted(p.name for p in (work / "ckpt").iterdir()) == [f"TRAIN-4{suffix}", f"TRAIN-8{suffix}"]
    torch_run, jax_run = results["pytorch"], results["jax"]
    assert torch_run["nworld"] == jax_run["nworld"] == 2
    assert torch_run["mpe"] == jax_run["mpe"] == 32 // (4 * 2)  # batch_size per world on both engines
    assert (torch_run["batch"], jax_run["batch"]) == (4, 8)  # a process per world vs one process for both
    for a, b in zip(torch_run["history"], jax_run["history"]):
        assert a["train"] == pytest.approx(b["train"], rel=1e-5) and a["dev"] == pytest.approx(b["dev"], rel=1e-5)
    assert torch_run["history"][-1]["dev"] < torch_run["history"][0]["dev"]


def test_jax_two_hosts_through_jax_distributed(jax_only, tmp_path):
    """Two processes of one CPU device each join through jax.distributed (JAX_COORDINATOR_ADDRESS, ...)."""
    from nebulae.cockpit.launch import free_port

    port = free_port()
    procs = []
    for pid in range(2):
        env = _env("jax")
        env.update(
            XLA_FLAGS="--xla_force_host_platform_device_count=1",
            JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
            JAX_NUM_PROCESSES="2",
            JAX_PROCESS_ID=str(pid),
        )
        args = [sys.executable, WORLD, tmp_path / f"host{pid}.npz", 2, STEPS, BATCH, "bn"]
        procs.append(subprocess.Popen(list(map(str, args)), cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
    assert not (tmp_path / "host1.npz").exists()  # rank 0 alone writes
    many = dict(np.load(tmp_path / "host0.npz"))
    _assert_same_training(_reference(tmp_path, "bn"), many)
    _assert_chunks_reduced(many)
    assert many["rank_mean"] == pytest.approx(1.5) and many["rank_sum"] == pytest.approx(3.0)  # one per host


def test_only_rank_zero_writes_anchors(torch_only, engine, tmp_path):
    """A torch process with RANK=1 (as Multiverse and torchrun set it) returns anchor names but writes nothing.

    (On JAX the rank is the host's jax.distributed process index; Orbax's save is collective.)
    """
    from tests.conftest import run_python

    code = f"""
import os
from nebulae.astro import dock
from nebulae.cockpit import TimeMachine
net = dock.Dense(2, 2)
tm = TimeMachine({str(tmp_path)!r}, {str(tmp_path)!r})
paths = [tm.drop(net), tm.drop(net, file='w.h5')]
tm.wait()
print(sorted(os.listdir({str(tmp_path)!r})), [os.path.basename(p) for p in paths])
"""
    listed = {}
    for rank in ("1", "0"):
        run = run_python(code, env={"NEB_CORE": engine, "RANK": rank})
        assert run.returncode == 0, run.stderr[-2000:]
        listed[rank] = run.stdout.strip()
    assert listed["1"].startswith("[] ")  # rank 1: names returned, nothing written
    assert "w.h5" in listed["0"].split("] [")[0]
