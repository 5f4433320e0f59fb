"""Multiverse(shard='params') on torch: FSDP2 sharded parameters over 2 spawned gloo processes.

The brochure-style MLP step (its optimizer built before `mv.sync`, gradient clipping) and a CNN with synchronised BN
(Adam) train 10 steps sharded, replicated (DDP) over 2 worlds, and in one process: the losses and the exported (whole)
weights agree within 1e-5 (two optimizers in one step too, against one process); every parameter and optimizer state
tensor of a sharded run holds about half of its elements on each rank, so the bytes of parameters + optimizer state per
rank are about halved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, assert_close

WORLD = ROOT / "tests" / "worlds" / "shard_torch_world.py"
MODELS = ("mlp", "cnn")


def _spawned(tmp: str, model: str, shard: str) -> dict:
    out = os.path.join(tmp, f"{model}-{shard}.npz")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(PYTHONPATH=str(ROOT), NEB_CORE="pytorch")
    run = subprocess.run(
        [sys.executable, str(WORLD), out, "2", model, shard], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    ranks = []
    for r in range(2):
        with open(f"{out}.rank{r}.json") as f:
            ranks.append(json.load(f))
    return {"arrays": dict(np.load(out)), "ranks": ranks}


@pytest.fixture(scope="module")
def runs(engine, tmp_path_factory):
    """{model: {'params' | 'none' | 'one': run}}: sharded and replicated over 2 worlds, and one process ('two':
    no replicated run)."""
    if engine != "pytorch":
        pytest.skip("FSDP2 over process worlds is torch's form; the JAX pass tests its mesh sharding")
    from nebulae.cockpit import Multiverse
    from tests.worlds import shard_torch_world

    tmp = str(tmp_path_factory.mktemp("shard"))
    out = {}
    for model in (*MODELS, "two"):
        one = os.path.join(tmp, f"{model}-one.npz")
        Multiverse(shard_torch_world.launch, 1, shard="params")(one, model, "params")
        out[model] = {"params": _spawned(tmp, model, "params"), "one": {"arrays": dict(np.load(one))}}
        if model != "two":
            out[model]["none"] = _spawned(tmp, model, "none")
    return out


@pytest.mark.parametrize("model", MODELS)
def test_sharded_training_equals_replicated_and_one_process(runs, model):
    sharded, replicated, one = (runs[model][k]["arrays"] for k in ("params", "none", "one"))
    assert sharded["losses"].shape == (10,) and np.isfinite(sharded["losses"]).all()
    assert_close(sharded["losses"], replicated["losses"], what="losses sharded vs replicated")
    assert_close(sharded["losses"], one["losses"], what="losses sharded vs one process")
    assert np.ptp(sharded["losses"]) > 1e-3  # trained: every step is a new batch, so no monotone curve
    assert set(sharded) == set(replicated) == set(one)
    for key in sharded:
        assert sharded[key].shape == replicated[key].shape, key  # whole arrays, not this rank's shard
        assert_close(sharded[key], replicated[key], what=f"{key} sharded vs replicated")
        assert_close(sharded[key], one[key], what=f"{key} sharded vs one process")
    if model == "cnn":
        assert {"bn1/running_mean", "bn2/running_var", "conv1/weight"} <= set(sharded)
    else:
        assert "fc1/weight" in sharded


@pytest.mark.parametrize("model", MODELS)
def test_parameters_and_optimizer_state_are_split_over_the_ranks(runs, model):
    ranks = runs[model]["params"]["ranks"]
    for name, first in ranks[0]["params"].items():
        held = [r["params"][name]["local"] for r in ranks]
        assert first["type"] == "DTensor", name
        assert sum(held) == first["global"], name
        assert max(held) <= -(-first["global"] // 2) + first["global"] // 4 and min(held) > 0, (name, held)
    for r in ranks:
        assert r["state_sharded"] and all(r["state_sharded"]), "every optimizer state tensor is split"
    for r in runs[model]["none"]["ranks"]:
        assert all(p["type"] != "DTensor" for p in r["params"].values())
        assert not any(r["state_sharded"])


@pytest.mark.parametrize("model", MODELS)
def test_parameter_and_optimizer_state_bytes_per_rank_are_halved(runs, model):
    replicated = runs[model]["none"]["ranks"][0]
    whole = replicated["param_bytes"] + replicated["state_bytes"]
    for rank, r in enumerate(runs[model]["params"]["ranks"]):
        held = r["param_bytes"] + r["state_bytes"]
        slack = r["largest_unsplit"]
        print(
            f"{model} rank {rank}: sharded {r['param_bytes']} + {r['state_bytes']} = {held} B, replicated "
            f"{replicated['param_bytes']} + {replicated['state_bytes']} = {whole} B, ratio {held / whole:.3f} "
            f"(largest unsplit {slack} B)"
        )
        assert 0.45 * whole - slack <= held <= 0.55 * whole + slack, (held, whole, slack)


def test_sharded_anchor_to_one_file_is_refused_clearly(runs):
    refused = runs["mlp"]["params"]["ranks"][0]["anchor"]
    assert "RuntimeError" in refused and "shard='params'" in refused and ".h5" in refused
    assert runs["mlp"]["none"]["ranks"][0]["anchor"] == "saved"


@pytest.mark.parametrize("model", MODELS)
def test_sharded_weights_import_whole_arrays_on_every_rank(runs, model):
    assert [r["imported"] for r in runs[model]["params"]["ranks"]] == [True, True]


def test_two_optimizers_in_one_step_of_a_sharded_craft_equal_one_process(runs):
    """Each optimizer applies only its own loss's gradient (DDP cannot run this step: two backwards of one forward)."""
    sharded, one = runs["two"]["params"]["arrays"], runs["two"]["one"]["arrays"]
    assert_close(sharded["losses"], one["losses"], what="losses")
    assert set(sharded) == set(one) == {"a/weight", "a/bias", "b/weight", "b/bias", "losses"}
    for key in sharded:
        assert_close(sharded[key], one[key], what=key)
