"""JAX's persistent compilation cache, on by default: a second identical process loads its step from disk.

Real processes with a cache folder of their own. JAX writes only executables that took at least
`jax_persistent_cache_min_compile_time_secs` to compile (1 s by default); the tests lower it to 0 so a small
MLP step is cached too (benchmarks/warm_start.py measures the ResNet-18 figures at the default).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_python

pytestmark = pytest.mark.once

STEP = """
import json, numpy as np, jax
import nebulae
nebulae.Law.CORE = "jax"
from nebulae.astro import dock
from tests.models.steps import mlp, train_dev

counts = {"hits": 0, "misses": 0}
def listen(event, **_):
    key = event.rpartition("/")[2]
    if key in ("cache_hits", "cache_misses"):
        counts[key[6:]] += 1
jax.monitoring.register_event_listener(listen)

train, _ = train_dev(dock, mlp(dock, bn=True), lr=0.01)
rng = np.random.default_rng(0)
x, z = rng.standard_normal((8, 12), dtype=np.float32), rng.integers(0, 5, 8)
losses = [float(dock.shell(train(dock.coat(x), dock.coat(z)))) for _ in range(3)]
print("@@" + json.dumps({"dir": jax.config.jax_compilation_cache_dir, "losses": losses, **counts}))
"""


def _run(env: dict) -> dict:
    r = run_python(STEP, dict({"JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}, **env))
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(next(ln[2:] for ln in r.stdout.splitlines() if ln.startswith("@@")))


def test_second_process_compiles_from_the_cache_with_the_same_losses(tmp_path):
    env = {"NEB_JAX_CACHE_DIR": str(tmp_path / "cache")}
    cold = _run(env)
    assert cold["dir"] == str(tmp_path / "cache")
    assert cold["hits"] == 0 and cold["misses"] >= 1, cold
    written = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert written, "the first process wrote nothing to the cache folder"

    warm = _run(env)
    assert warm["hits"] >= 1 and warm["misses"] == 0, warm  # every executable came from the folder
    assert warm["losses"] == cold["losses"]  # bit for bit: the cached step is the same program


def test_the_default_folder_is_per_user_and_the_cache_can_be_turned_off(tmp_path):
    default = _run({"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert default["dir"] == str(tmp_path / "xdg" / "nebulae" / "jax") and default["misses"] >= 1
    assert any((tmp_path / "xdg" / "nebulae" / "jax").iterdir())

    off = _run({"NEB_JAX_CACHE": "0", "XDG_CACHE_HOME": str(tmp_path / "off")})
    assert off["dir"] is None and off["hits"] == off["misses"] == 0, off
    assert not (tmp_path / "off").exists()
    assert off["losses"] == default["losses"]


def test_a_folder_the_user_gave_jax_wins(tmp_path):
    mine = tmp_path / "mine"
    got = _run({"JAX_COMPILATION_CACHE_DIR": str(mine), "NEB_JAX_CACHE_DIR": str(tmp_path / "ours")})
    assert got["dir"] == str(mine) and any(mine.iterdir())
    assert not (tmp_path / "ours").exists()
