"""Per-world state memory of `Multiverse(shard='params')` against replicated state, on a 2-world mesh.

Workloads: an MLP (6 -> 16, BN, -> 3) and the hangar's ResNet-18 (10 classes, 3x32x32), each trained with Adam
for `--steps` steps, so the optimizer's slots exist and the state is measured as the steps leave it.
Per-world state bytes: every state array of the step craft (parameters, BN statistics, Adam moments, counters,
RNG keys), each once, counted by the bytes its shard on the first device holds. With shard='params' the split
arrays halve and the arrays kept whole (no dimension divides by the world count, scalars, integers) stay.

- JAX: one process over a 2-device CPU mesh (XLA_FLAGS=--xla_force_host_platform_device_count=2, set here
  unless XLA_FLAGS is set already), `backends/jax/sharding.world_bytes`.
- torch: not measured here yet (FSDP2's side adds its own `measure` to MEASURES).

    PYTHONPATH=. python -m benchmarks.sharding_memory --engine jax [--steps 2]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script (python benchmarks/x.py): import it as a module of `benchmarks`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import benchmarks  # noqa: F401 (the parent package of the relative imports below)

    __package__ = "benchmarks"

import numpy as np

from . import common
from .train_step import train_craft

WORLDS = 2
MODELS = ("mlp", "resnet18")
BATCHES = {"mlp": ((8, 6), 3), "resnet18": ((4, 3, 32, 32), 10)}  # global batch shape, classes
HEADERS = (
    "engine",
    "model",
    "state arrays",
    "replicated KiB/world",
    "sharded KiB/world",
    "sharded / replicated",
    "kept whole B/world",
    "largest whole B",
)


def _jax_world(mv, model: str, steps: int, out: dict) -> None:
    """A Multiverse universe: build `model`, train it `steps` steps with Adam, measure device 0's state."""
    import jax

    from nebulae.astro import dock, hangar, init
    from nebulae.backends.jax import sharding

    class MLP(dock.Craft):
        def __init__(self):
            super().__init__("MLP")
            self.fc1 = dock.Dense(6, 16, b_init=dock.Void())
            self.bn = dock.BN(16, 1)
            self.act = dock.Relu()
            self.fc2 = dock.Dense(16, 3)

        def run(self, x):
            return self.fc2(self.act(self.bn(self.fc1(x))))

    mv.init()
    init.seed(0)
    net = mv.sync(MLP() if model == "mlp" else hangar.ResNet(18, nclass=10, in_shape=(3, 32, 32)))
    train = train_craft(dock, net)  # the seed-style step: softmax cross-entropy, Adam(lr=1e-3)
    shape, nclass = BATCHES[model]
    rng = np.random.default_rng(0)
    for _ in range(steps):
        x, z = rng.standard_normal(shape).astype(np.float32), rng.integers(0, nclass, shape[0])
        dock.shell(train(dock.coat(x), dock.coat(z)))
    out["bytes"] = sharding.world_bytes(train, jax.devices()[0])


def measure_jax(steps: int) -> list[tuple]:
    """The JAX rows: per-world state bytes, replicated and sharded, of each model on a 2-device CPU mesh."""
    if "jax" not in sys.modules:
        os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={WORLDS}")
    os.environ["NEB_CORE"] = "jax"
    import nebulae
    from nebulae.cockpit import Multiverse

    nebulae.Law.CORE = "jax"
    rows = []
    for model in MODELS:
        got = {}
        for shard in (None, "params"):
            out: dict = {}
            Multiverse(_jax_world, WORLDS, shard=shard)(model, steps, out)
            got[shard] = out["bytes"]
        rep, sha = got[None], got["params"]
        rows.append(
            (
                "jax",
                model,
                rep.arrays,
                f"{rep.total / 2**10:.1f}",
                f"{sha.total / 2**10:.1f}",
                f"{sha.total / rep.total:.3f}",
                sha.whole,
                sha.largest_whole,
            )
        )
    return rows


MEASURES: dict[str, Callable[[int], list[tuple]]] = {"jax": measure_jax}


def main(argv: list[str] | None = None) -> int:
    """Print the table for the engines asked for.

    Args:
        argv: command-line arguments (default: sys.argv[1:]).
    """
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=("jax", "pytorch", "torch"), default="jax")
    parser.add_argument("--steps", type=int, default=2, help="training steps before measuring (default 2)")
    args = parser.parse_args(argv)
    engine = "pytorch" if args.engine == "torch" else args.engine
    measure = MEASURES.get(engine)
    if measure is None:
        print(f"{engine}: not measured here")
        return 0
    print(f"per-world state memory, {WORLDS} worlds, Adam, after {args.steps} steps")
    print(common.format_table(HEADERS, measure(args.steps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
