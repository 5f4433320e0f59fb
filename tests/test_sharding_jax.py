"""Multiverse(shard='params') on JAX: the state split over a real 2-device CPU mesh (XLA_FLAGS, as tests/conftest.py
sets it), FSDP / ZeRO-3 style.

The MLP of the Multiverse tests (with BN) and the hangar's ResNet-18, trained with Adam for 10 steps, give the
losses of the replicated 2-world run and of one device; each float state array with a dimension that divides by
2 is split on its largest such dimension, and stays so after the steps (parameters and their Adam moments hold
half the elements per device); a device holds half the replicated state's bytes plus the arrays kept whole;
export_weights gives the full arrays; an anchor dropped from the split world loads into one device and into a
split world, and training resumes on the same losses.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import assert_close

STEPS = 10
RUNS = {"one": (1, None), "replicated": (2, None), "sharded": (2, "params")}


@pytest.fixture
def jax_only(engine):
    if engine != "jax":
        pytest.skip("JAX's sharded state; the torch pass tests FSDP")


_cache: dict = {}


def _runs(engine: str, model: str) -> dict:
    """The three runs of `model` (one device, 2 worlds replicated, 2 worlds split), made once per module."""
    if engine != "jax":
        pytest.skip("JAX's sharded state; the torch pass tests FSDP")
    if model not in _cache:
        from nebulae.cockpit import Multiverse
        from tests.worlds import shard_world

        _cache[model] = {}
        for name, (nworld, shard) in RUNS.items():
            out: dict = {}
            Multiverse(shard_world.launch, nworld, shard=shard)(model, STEPS, out)
            _cache[model][name] = out
    return _cache[model]


MODELS = ["mlp", "resnet18"]
# float32 sums in another order (batch split over 2 devices; a split weight's partial products) part ResNet-18's
# runs by up to ~3e-5 relative over 10 steps (replicated 2 worlds vs 1 device: ~1e-5 already); the MLP's stay
# within 1e-5
RTOL = {"mlp": 1e-5, "resnet18": 1e-4}
WEIGHTS_ATOL = {"mlp": 1e-5, "resnet18": 2e-4}


def test_split_dim_rule(jax_only):
    from jax import numpy as jnp

    from nebulae.backends.jax.sharding import split_dim

    assert split_dim((3, 3, 64, 128), jnp.float32, 2) == 3  # HWIO kernel: its largest even dimension
    assert split_dim((16, 6), jnp.float32, 2) == 0
    assert split_dim((3, 16), jnp.float32, 2) == 1
    assert split_dim((8, 8), jnp.float32, 2) == 0  # a tie: the first
    assert split_dim((3, 5), jnp.float32, 2) is None  # no dimension divides
    assert split_dim((), jnp.float32, 2) is None
    assert split_dim((16,), jnp.int32, 2) is None  # counters stay whole
    assert split_dim((16,), jnp.float32, 1) is None


@pytest.mark.parametrize("model", MODELS)
def test_sharded_losses_equal_replicated_and_one_device(jax_only, engine, model):
    runs = _runs(engine, model)
    for name in ("replicated", "sharded"):
        first, every = runs[name]["losses"], runs["one"]["losses"]
        assert_close(first[:3], every[:3], rtol=1e-5, atol=1e-5, what=f"{name} losses, first steps")
        assert_close(first, every, rtol=RTOL[model], atol=1e-5, what=f"{name} losses")
    assert len(runs["sharded"]["losses"]) == STEPS
    assert np.std(runs["one"]["losses"]) > 0  # it trains
    assert {name: run["traces"] for name, run in runs.items()} == dict.fromkeys(RUNS, 1)


@pytest.mark.parametrize("model", MODELS)
def test_state_stays_split_after_steps(jax_only, engine, model):
    from nebulae.backends.jax.sharding import split_dim

    runs = _runs(engine, model)
    probe = runs["sharded"]["probe"]
    assert set(probe) == {"param", "mu", "nu"}  # the parameter and its two Adam moments
    for what, lay in probe.items():
        size = int(np.prod(lay["shape"]))
        assert lay["elements"] == [size // 2, size // 2], f"{what}: {lay}"
        assert "data" in lay["spec"]
    for what, lay in runs["replicated"]["probe"].items():
        size = int(np.prod(lay["shape"]))
        assert lay["elements"] == [size, size] and "data" not in lay["spec"], what
    split = 0
    for key, lay in runs["sharded"]["state"].items():
        size = int(np.prod(lay["shape"]))
        dim = split_dim(lay["shape"], np.float32, 2) if lay["float"] else None
        if dim is None:
            assert lay["elements"] == [size, size] and "data" not in lay["spec"], f"{key}: {lay}"
        else:
            assert lay["spec"] == (None,) * dim + ("data",), f"{key}: {lay}"
            assert lay["elements"] == [size // 2, size // 2], f"{key}: {lay}"
            split += 1
    assert split > len(runs["sharded"]["state"]) // 2


@pytest.mark.parametrize("model", MODELS)
def test_a_device_holds_half_the_state(jax_only, engine, model):
    runs = _runs(engine, model)
    rep, sha, one = runs["replicated"]["bytes"], runs["sharded"]["bytes"], runs["one"]["bytes"]
    print(
        f"\n{model}: per-world state bytes: one device {one.total}, replicated {rep.total}, sharded {sha.total} "
        f"({sha.total / rep.total:.3f} of replicated; kept whole {sha.whole} B, largest {sha.largest_whole} B)"
    )
    assert rep.total == one.total
    assert abs(sha.total - rep.total / 2) <= 0.1 * rep.total / 2 + sha.largest_whole
    assert sha.total == (rep.total - sha.whole) // 2 + sha.whole  # split arrays halve, whole ones stay


@pytest.mark.parametrize("model", MODELS)
def test_export_weights_gives_the_full_arrays(jax_only, engine, model):
    runs = _runs(engine, model)
    sharded, replicated = runs["sharded"]["weights"], runs["replicated"]["weights"]
    assert sorted(sharded) == sorted(replicated)
    for key, array in sharded.items():
        assert isinstance(array, np.ndarray) and array.shape == replicated[key].shape, key
        assert_close(array, replicated[key], rtol=1e-5, atol=WEIGHTS_ATOL[model], what=key)


def test_anchor_of_a_split_world_loads_anywhere_and_resumes(jax_only, tmp_path):
    from nebulae.cockpit import Multiverse
    from tests.worlds import shard_world

    full: dict = {}
    Multiverse(shard_world.launch, 2, shard="params")("mlp", 8, full, anchor_dir=str(tmp_path / "a"), anchor_at=5)
    one: dict = {}
    shard_world.resume(None, "mlp", full["anchor"], 5, 3, one)  # outside a Multiverse: one device
    two: dict = {}
    Multiverse(shard_world.resume, 2, shard="params")("mlp", full["anchor"], 5, 3, two)
    for name, run in (("one device", one), ("split world", two)):
        assert sorted(run["loaded"]) == sorted(full["anchor_weights"]), name
        for key, array in full["anchor_weights"].items():
            np.testing.assert_array_equal(run["loaded"][key], array, err_msg=f"{name}: {key}")
        assert_close(run["losses"], full["losses"][5:], rtol=1e-6, atol=1e-6, what=f"{name}: resumed losses")
    assert all(len(lay["elements"]) == 1 for lay in one["state"].values())
    assert two["state"]["fc1/weight"]["elements"] == [48, 48]  # (16, 6): split on its 16
