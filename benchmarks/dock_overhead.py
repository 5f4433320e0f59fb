"""What the dock wrapper costs: a dock CNN forward vs the same network in plain torch.nn / plain jax.lax.

Workload (env.md §3 CNN, forward only, eval mode): NCHW 3x32x32, conv3x3 3->32 + ReLU + maxpool2,
conv3x3 32->64 + ReLU + maxpool2, dense 4096->128 + ReLU, dense 128->10; batch 128.
Contenders, each in its own process: `dock-torch` (NEB_CORE=pytorch, dock crafts under Nozzle),
`torch-nn` (nn.Conv2d/nn.Linear/F.max_pool2d under torch.no_grad), `dock-jax` (NEB_CORE=jax, the
same dock model: one compiled call), `jax-lax` (lax.conv_general_dilated + reduce_window under
jax.jit). Repetitions are interleaved across contenders. Target: dock / plain >= 0.97 on both.

    PYTHONPATH=. python benchmarks/dock_overhead.py [--quick] [--reps R] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script (python benchmarks/x.py): import it as a module of `benchmarks`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import benchmarks  # noqa: F401 (the parent package of the relative imports below)

    __package__ = "benchmarks"

import numpy as np

from . import common, memory

SUITE, TARGET = "dock_overhead", ">= 0.97"
CONTENDERS = {"dock-torch": "pytorch", "torch-nn": "pytorch", "dock-jax": "jax", "jax-lax": "jax"}
PAIRS = [("dock-torch", "torch-nn"), ("dock-jax", "jax-lax")]


def _batch(batch: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(batch, 3, 32, 32)).astype(np.float32)


def build_dock(batch: int):
    """The CNN written with dock crafts; returns (step, sync)."""
    from nebulae.astro import dock

    class CNN(dock.Craft):
        def __init__(self):
            super().__init__("CNN")
            self.c1, self.c2 = dock.Conv(3, 32, (3, 3), padding=1), dock.Conv(32, 64, (3, 3), padding=1)
            self.pool, self.act = dock.MaxPool((2, 2)), dock.Relu()
            self.f1, self.f2 = dock.Dense(4096, 128), dock.Dense(128, 10)

        def run(self, x):
            y = self.pool(self.act(self.c2(self.pool(self.act(self.c1(x))))))
            return self.f2(self.act(self.f1(y.reshape(y.shape[0], -1))))

    net = CNN()
    x = dock.coat(_batch(batch))

    def step():
        with dock.Nozzle():
            return net(x)

    return step, lambda y: dock.shell(y[0, 0])


def build_torch_nn(batch: int):
    """The same CNN in plain torch.nn."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(3, 32, 3, padding=1), nn.Conv2d(32, 64, 3, padding=1)
            self.f1, self.f2 = nn.Linear(4096, 128), nn.Linear(128, 10)

        def forward(self, x):
            y = F.max_pool2d(F.relu(self.c2(F.max_pool2d(F.relu(self.c1(x)), 2))), 2)
            return self.f2(F.relu(self.f1(y.reshape(y.shape[0], -1))))

    net = CNN().eval()
    x = torch.from_numpy(_batch(batch))

    def step():
        with torch.no_grad():
            return net(x)

    return step, lambda y: float(y[0, 0])


def build_jax_lax(batch: int):
    """The same CNN on jax.lax under jax.jit, parameters in a plain dict."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    rng = np.random.default_rng(0)
    p = {
        "c1w": rng.normal(0, 0.1, (32, 3, 3, 3)),
        "c1b": np.zeros(32),
        "c2w": rng.normal(0, 0.05, (64, 32, 3, 3)),
        "c2b": np.zeros(64),
        "f1w": rng.normal(0, 0.02, (128, 4096)),
        "f1b": np.zeros(128),
        "f2w": rng.normal(0, 0.1, (10, 128)),
        "f2b": np.zeros(10),
    }
    p = {k: jnp.asarray(v, jnp.float32) for k, v in p.items()}
    dn = ("NCHW", "OIHW", "NCHW")

    def conv(x, w, b):
        return lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=dn) + b[None, :, None, None]

    def pool(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    @jax.jit
    def forward(p, x):
        y = pool(jax.nn.relu(conv(pool(jax.nn.relu(conv(x, p["c1w"], p["c1b"]))), p["c2w"], p["c2b"])))
        y = jax.nn.relu(y.reshape(y.shape[0], -1) @ p["f1w"].T + p["f1b"])
        return y @ p["f2w"].T + p["f2b"]

    x = jnp.asarray(_batch(batch))
    return (lambda: forward(p, x)), (lambda y: float(y[0, 0]))


BUILDERS = {"dock-torch": build_dock, "dock-jax": build_dock, "torch-nn": build_torch_nn, "jax-lax": build_jax_lax}


def worker_main(contender: str, batch: int) -> None:
    """Worker process: build the contender, then answer setup / rep commands."""
    live = {}

    def setup(warmup: int) -> dict:
        step, sync = BUILDERS[contender](batch)
        first, _ = common.time_block(lambda: sync(step()))
        for _ in range(warmup):
            sync(step())
        live.update(step=step, sync=sync)
        return {"first_step": first}

    def rep(steps: int) -> dict:
        wall, cpu = common.timed_steps(live["step"], live["sync"], steps)
        return {"seconds": wall, "cpu_seconds": cpu}

    common.serve({"setup": setup, "rep": rep, "finish": memory.peak_memory})


def measure(batch: int, steps: int, reps: int, warmup: int, contenders: dict[str, str], pause: float = 0.2):
    """Run `contenders` ({name: engine}) in their workers: (setups, forwards/s per repetition, finals) by name."""
    workers = [
        common.Worker(
            name, f"{common.PACKAGE}.dock_overhead", ["--contender", name, "--batch", str(batch)], {"NEB_CORE": core}
        )
        for name, core in contenders.items()
    ]
    try:
        setups = {w.name: w.request("setup", warmup=warmup) for w in workers}
        results = common.interleave(workers, reps, pause=pause, steps=steps)
        finals = {w.name: w.request("finish") for w in workers}
    finally:
        for w in workers:
            w.close()
    rates = {name: [steps / r["seconds"] for r in reps_] for name, reps_ in results.items()}
    return setups, rates, finals


def collect(quick: bool = False, gpu: bool = False, engines=("pytorch", "jax")) -> list[dict]:
    """Run the suite for benchmarks.run (CPU; `gpu` is ignored) on `engines`; unified result rows."""
    contenders = {name: core for name, core in CONTENDERS.items() if core in engines}
    batch, steps, reps, warmup = (16, 3, 2, 1) if quick else (128, 10, 9, 3)
    setups, rates, finals = measure(batch, steps, reps, warmup, contenders, pause=0.0 if quick else 0.2)
    wl, out = f"cnn-forward-b{batch}", []
    for name in contenders:
        row = common.result(SUITE, wl, name, "forwards/s", rates[name], "forwards/s")
        pair = next((p for p in PAIRS if p[0] == name), None)
        if pair:
            row = common.with_ratio(row, pair[1], [a / b for a, b in zip(rates[name], rates[pair[1]])], TARGET)
        out.append(row)
        out.append(common.result(SUITE, wl, name, "first step", [setups[name]["first_step"]], "s"))
        out += common.memory_rows(SUITE, wl, name, finals[name])
    return out


def main(argv=None) -> int:
    """Run the comparison and print/write the table and ratios."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny batch and few steps (seconds)")
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--out", default="bench_out")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--contender", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    batch = args.batch or (16 if args.quick else 128)
    if args.worker:
        worker_main(args.contender, batch)
        return 0
    steps, reps, warmup = (3, 3, 1) if args.quick else (10, args.reps, 3)
    setups, rates, finals = measure(batch, steps, reps, warmup, CONTENDERS)
    rows = []
    for name in CONTENDERS:
        med, lo, hi = common.median_range(rates[name])
        rows.append(
            [
                name,
                f"{setups[name]['first_step']:.2f}",
                common.fmt_spread(med, lo, hi),
                f"{finals[name]['peak_rss_mb']:.0f}",
            ]
        )
    print(f"dock overhead, CNN forward batch {batch} ({os.cpu_count()} CPUs)")
    print(common.format_table(["contender", "first call s", "forwards/s median (min-max)", "peak RSS MB"], rows))
    ratio_rows = []
    for dock_name, plain in PAIRS:
        paired = [a / b for a, b in zip(rates[dock_name], rates[plain])]
        med, lo, hi = common.median_range(paired)
        ratio_rows.append(
            [f"{dock_name} / {plain}", common.fmt_spread(med, lo, hi, 3), "ok" if med >= 0.97 else "BELOW 0.97"]
        )
    print(common.format_table(["ratio (paired repetitions)", "median (min-max)", "target >= 0.97"], ratio_rows))
    path = common.write_csv(
        Path(args.out) / "dock_overhead.csv", ["row", "value", "note"], [[r[0], r[2], r[1]] for r in rows] + ratio_rows
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
