"""How long `TimeMachine.drop` blocks the training loop, against a plain synchronous save of the same state.

Workload: a dock craft of ~`--mb` MB of float32 weights (square-ish Dense layers of 2048 x 2048 floats
each, 16 MiB apiece), saved into a temporary folder. Each engine runs in its own process (NEB_CORE set).
- torch: `drop` (asynchronous by default: it blocks while the tensors are copied to host memory;
  `torch.save` to a temporary file, fsync and rename follow in the background) vs a bare
  `torch.save(state_dict, path)` to a new file. Target: drop / bare <= 1.10. `sync drop`
  (`TimeMachine(asynchronous=False)`: torch.save + fsync + rename before returning) is shown too.
- JAX: `drop` with the default asynchronous Orbax save (returns once the arrays are off the device)
  vs a synchronous save of the same state (`sync drop`: Orbax write and commit before returning).
  Target: blocked / synchronous <= 0.20. `np.savez` of the host arrays is shown for scale.
`drop+wait` is the asynchronous drop until the anchor is durable under its name.
Every repetition waits for the previous save to finish (and `os.sync()`s) before timing the next
contender; contenders alternate order between repetitions. Medians (min-max) over the repetitions.

    PYTHONPATH=. python benchmarks/checkpoint.py [--quick] [--mb 100] [--reps 7] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script (python benchmarks/x.py): import it as a module of `benchmarks`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import benchmarks  # noqa: F401 (the parent package of the relative imports below)

    __package__ = "benchmarks"

import numpy as np

from . import common, memory

LAYER = (2048, 2048)  # 16 MiB of float32 per layer
TARGETS = {"pytorch": ("drop blocked / torch.save", 1.10), "jax": ("drop blocked / sync drop", 0.20)}
BASELINES = {"pytorch": "torch.save", "jax": "sync drop"}
SUITE = "checkpoint"


def build(mb: float):
    """A dock craft with about `mb` MB of float32 weights."""
    from nebulae.astro import dock, init

    layers = max(1, round(mb * 2**20 / (LAYER[0] * LAYER[1] * 4)))
    init.seed(0)

    class Big(dock.Craft):
        def __init__(self):
            super().__init__("BIG")
            self.fcs = [dock.Dense(LAYER[1], LAYER[0], b_init=dock.Void()) for _ in range(layers)]

        def run(self, x):
            for fc in self.fcs:
                x = fc(x)
            return x

    net = Big()
    size = sum(v.nbytes for v in net.export_weights().values()) / 2**20
    return net, size


def worker_main(mb: float) -> None:
    """Worker process (one engine): build the model, then time one repetition of each contender per `rep`."""
    from nebulae import law
    from nebulae.cockpit.timemachine import TimeMachine

    engine = law.Law.CORE
    net, size = build(mb)
    folder = tempfile.mkdtemp(prefix="neb-ckpt-bench-")
    async_tm = TimeMachine(folder, os.path.join(folder, "async"), max_anchors=1)
    sync_tm = TimeMachine(folder, os.path.join(folder, "sync"), max_anchors=1, asynchronous=False)

    def timed_drop() -> dict:
        start = time.perf_counter()
        async_tm.drop(net)
        blocked = time.perf_counter() - start
        async_tm.wait()
        return {"drop": blocked, "drop+wait": time.perf_counter() - start}

    count = [0]
    if engine == "pytorch":
        import torch

        def bare() -> dict:
            path = os.path.join(folder, f"bare-{count[0]}.pth")  # a new file, as drop writes one
            start = time.perf_counter()
            torch.save(net.state_dict(), path)
            seconds = time.perf_counter() - start
            os.remove(path)
            return {"torch.save": seconds}

        def synchronous() -> dict:
            start = time.perf_counter()
            sync_tm.drop(net)
            return {"sync drop": time.perf_counter() - start}

        contenders = [timed_drop, bare, synchronous]
    else:
        import jax

        def synchronous() -> dict:
            start = time.perf_counter()
            sync_tm.drop(net)
            return {"sync drop": time.perf_counter() - start}

        def savez() -> dict:
            start = time.perf_counter()
            host = {k: np.asarray(jax.device_get(v)) for k, v in net.export_weights().items()}
            np.savez(os.path.join(folder, "bare.npz"), **{k.replace("/", "."): v for k, v in host.items()})
            return {"np.savez": time.perf_counter() - start}

        contenders = [timed_drop, synchronous, savez]

    def rep() -> dict:
        out = {}
        order = common.rotated(contenders, count[0])
        count[0] += 1
        for fn in order:
            os.sync()  # every contender starts with no dirty pages of the previous one being written back
            time.sleep(0.2)
            out.update(fn())
        return out

    def finish() -> dict:
        async_tm.wait()
        shutil.rmtree(folder, ignore_errors=True)
        return memory.peak_memory()

    common.serve({"setup": lambda: {"mb": size, "engine": engine}, "rep": rep, "finish": finish})


def measure(engine: str, mb: float, reps: int) -> tuple[dict, list[dict], dict]:
    """One engine's worker: (setup reply, `reps` repetitions after one warm-up, peak memory)."""
    worker = common.Worker(engine, f"{common.PACKAGE}.checkpoint", ["--mb", str(mb)], {"NEB_CORE": engine})
    try:
        setup = worker.request("setup")
        worker.request("rep")  # warm-up: first-call costs (imports, Orbax set-up) are not the steady state
        results = [worker.request("rep") for _ in range(reps)]
        final = worker.request("finish")
    finally:
        worker.close()
    return setup, results, final


def collect(quick: bool = False, gpu: bool = False, engines=("pytorch", "jax")) -> list[dict]:
    """Run the suite for benchmarks.run on `engines` (100 MB, 7 repetitions; quick: 16 MB, 2); result rows."""
    mb, reps = (16.0, 2) if quick else (100.0, 7)
    out = []
    for engine in (e for e in ("pytorch", "jax") if e in engines):
        setup, results, final = measure(engine, mb, reps)
        wl = f"{'torch' if engine == 'pytorch' else 'jax'} {setup['mb']:.0f} MB"
        base = BASELINES[engine]
        for name in results[0]:
            row = common.result(SUITE, wl, name, "loop blocked", [r[name] * 1e3 for r in results], "ms")
            if name == "drop":
                row = common.with_ratio(row, base, [r["drop"] / r[base] for r in results], f"<= {TARGETS[engine][1]}")
            out.append(row)
        out += common.memory_rows(SUITE, wl, "worker", final)
    return out


def main(argv=None) -> int:
    """Run both engines, print the table and ratios, write <out>/checkpoint.csv."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a 32 MB model and 3 repetitions (seconds)")
    parser.add_argument("--mb", type=float, default=100.0, help="model size in MB (default 100)")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--out", default="bench_out")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    mb, reps = (32.0, 3) if args.quick else (args.mb, args.reps)
    if args.worker:
        worker_main(mb)
        return 0
    rows, ratio_rows = [], []
    for engine in ("pytorch", "jax"):
        setup, results, final = measure(engine, mb, reps)
        for name in results[0]:
            med, lo, hi = common.median_range([r[name] for r in results])
            rows.append([engine, name, f"{setup['mb']:.0f}", common.fmt_spread(med * 1e3, lo * 1e3, hi * 1e3)])
        base = "torch.save" if engine == "pytorch" else "sync drop"
        paired = [r["drop"] / r[base] for r in results]
        med, lo, hi = common.median_range(paired)
        label, target = TARGETS[engine]
        verdict = "ok" if med <= target else f"ABOVE {target}"
        ratio_rows.append([engine, label, common.fmt_spread(med, lo, hi, 3), f"<= {target}", verdict])
        rows.append([engine, "peak RSS MB", "", f"{final['peak_rss_mb']:.0f}"])
    print(f"checkpoint blocking time, {mb:.0f} MB model, {reps} repetitions ({os.cpu_count()} CPUs)")
    print(common.format_table(["engine", "contender", "MB", "ms median (min-max)"], rows))
    print(common.format_table(["engine", "ratio (paired)", "median (min-max)", "target", "verdict"], ratio_rows))
    path = common.write_csv(
        Path(args.out) / "checkpoint.csv",
        ["engine", "row", "value", "target_or_mb"],
        [[r[0], r[1], r[3], r[2]] for r in rows] + [[r[0], r[1], r[2], r[3]] for r in ratio_rows],
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
