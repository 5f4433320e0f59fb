"""Train-step throughput (steps/s, CPU): nebulae on each engine against hand-written baselines.

Workloads (Adam lr 1e-3, softmax cross-entropy, one fixed random batch):
- ``mlp``: 784-512-512-10 with ReLU, batch 256.
- ``cnn``: NCHW 3x32x32 input, conv3x3 3->32 stride 2 (padding 1) + ReLU, conv3x3 32->64 stride 2
  (padding 1) + ReLU, dense 4096->128 + ReLU, dense 128->10; batch 128. Each conv + 2x2 max-pool
  of the reference CNN (shared/reference/env.md §3) is replaced by ONE stride-2 convolution in
  every contender, because dock has no MaxPool yet: same shapes (32->16->8, 4096 features into
  the dense layer), about a quarter of the reference's convolution FLOPs, identical math in all
  contenders.

Contenders, each in its own interpreter (``NEB_CORE`` set for the nebulae ones):
- ``nebulae-torch`` / ``nebulae-jax``: the model and a seed-style ``Train`` step craft written once
  with ``nebulae.astro.dock``; on JAX each ``train(x, z)`` runs one cached ``jax.jit`` step.
- ``torch-eager``: plain torch modules, torch.optim.Adam, F.cross_entropy, zero_grad/backward/step.
- ``jax-functional``: Flax NNX, ``nnx.split((model, optimizer))`` and a plain
  ``jax.jit(step, donate_argnums=0)`` doing merge -> value_and_grad -> optimizer.update -> state.
- ``jax-nnxjit``: the canonical ``@nnx.jit def train_step(model, optimizer, x, y)``.
The hand-written JAX models use ``nnx.Linear`` for dense layers and, for convolutions,
``jax.lax.conv_general_dilated`` on NCHW data with OIHW kernels held in ``nnx.Param`` (the layout
nebulae uses on JAX), so the JAX contenders run the same FLOPs in the same layout.

Method: each worker builds its model, times its first step (compile on JAX) and runs a few more
warm-up steps; then R repetitions of S steps are interleaved across the live workers in rotated
order (see benchmarks.common), each ending with a device sync (``dock.shell`` / ``loss.item()``
/ ``jax.block_until_ready``). Reported: median steps/s (min-max), torch's thread count, peak RSS,
and ratios per repetition pair (median, min-max).

Usage (repository root): ``PYTHONPATH=. python benchmarks/train_step.py [--quick]
[--workloads mlp,cnn] [--reps R] [--steps S] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from benchmarks import common

CONTENDERS = ("nebulae-torch", "torch-eager", "nebulae-jax", "jax-functional", "jax-nnxjit")
ENGINE = {"nebulae-torch": "pytorch", "torch-eager": "pytorch"}  # the rest: "jax"
RATIOS = (("nebulae-torch", "torch-eager"), ("nebulae-jax", "jax-functional"), ("nebulae-jax", "jax-nnxjit"))
HEADERS = ("workload", "contender", "first step s", "median steps/s (min–max)", "threads", "peak RSS MB")

FULL = {
    "mlp": {"dims": (784, 512, 512, 10), "batch": 256, "steps": 30},
    "cnn": {"image": (3, 32, 32), "chans": (32, 64), "hidden": 128, "classes": 10, "batch": 128, "steps": 5},
}
QUICK = {
    "mlp": {"dims": (64, 32, 32, 10), "batch": 16, "steps": 3},
    "cnn": {"image": (3, 8, 8), "chans": (4, 8), "hidden": 16, "classes": 10, "batch": 8, "steps": 2},
}


def workload_config(name: str, quick: bool) -> dict:
    """The configuration of workload `name` (tiny under `quick`), with derived fields filled in."""
    cfg = dict((QUICK if quick else FULL)[name], name=name)
    if name == "cnn":
        c, h, w = cfg["image"]
        cfg["flat"] = cfg["chans"][1] * (h // 4) * (w // 4)  # two stride-2 convs, padding 1
    else:
        cfg["classes"] = cfg["dims"][-1]
    return cfg


def make_batch(cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    """The fixed random batch: float32 inputs and int64 labels."""
    rng = np.random.default_rng(0)
    shape = (cfg["batch"], *cfg["image"]) if cfg["name"] == "cnn" else (cfg["batch"], cfg["dims"][0])
    x = rng.standard_normal(shape, dtype=np.float32)
    y = rng.integers(0, cfg["classes"], size=cfg["batch"], dtype=np.int64)
    return x, y


def build_nebulae(cfg: dict):
    """The model and seed-style Train craft written with dock; returns (step, sync, info)."""
    from nebulae.astro import dock

    class MLP(dock.Craft):
        def __init__(self, dims):
            super().__init__("MLP")
            self.fc1, self.fc2, self.fc3 = (dock.Dense(a, b) for a, b in zip(dims[:-1], dims[1:]))
            self.relu1, self.relu2 = dock.Relu(), dock.Relu()

        def run(self, x):
            return self.fc3(self.relu2(self.fc2(self.relu1(self.fc1(x)))))

    class CNN(dock.Craft):
        def __init__(self, cfg):
            super().__init__("CNN")
            (c, _, _), (c1, c2) = cfg["image"], cfg["chans"]
            self.conv1 = dock.Conv(c, c1, (3, 3), stride=2, padding=1)
            self.conv2 = dock.Conv(c1, c2, (3, 3), stride=2, padding=1)
            self.fc1 = dock.Dense(cfg["flat"], cfg["hidden"])
            self.fc2 = dock.Dense(cfg["hidden"], cfg["classes"])
            self.relu1, self.relu2, self.relu3 = dock.Relu(), dock.Relu(), dock.Relu()

        def run(self, x):
            x = self.relu2(self.conv2(self.relu1(self.conv1(x))))
            return self.fc2(self.relu3(self.fc1(x.reshape(x.shape[0], -1))))

    class Train(dock.Craft):
        def __init__(self, net, scope="TRAIN"):
            super().__init__(scope)
            self.net = net
            self.loss = dock.SftmXE()
            self.optz = dock.Adam(net, lr=1e-3)

        def run(self, x, z):
            with dock.Rudder() as rd:
                self.net.gear(rd)
                y = self.net(x)
                loss = self.loss(y, z)
                self.optz(loss)
            return loss

    net = CNN(cfg) if cfg["name"] == "cnn" else MLP(cfg["dims"])
    train = Train(net)
    x, z = (dock.coat(a) for a in make_batch(cfg))

    def info():
        traces = getattr(train, "traces", None)
        return {} if traces is None else {"traces": int(traces)}

    return (lambda: train(x, z)), dock.shell, info


def build_torch_eager(cfg: dict):
    """Hand-written eager torch: nn modules, torch.optim.Adam, F.cross_entropy; returns (step, sync, info)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(0)
    if cfg["name"] == "cnn":
        (c, _, _), (c1, c2) = cfg["image"], cfg["chans"]
        model = nn.Sequential(
            nn.Conv2d(c, c1, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(cfg["flat"], cfg["hidden"]),
            nn.ReLU(),
            nn.Linear(cfg["hidden"], cfg["classes"]),
        )
    else:
        d = cfg["dims"]
        model = nn.Sequential(nn.Linear(d[0], d[1]), nn.ReLU(), nn.Linear(d[1], d[2]), nn.ReLU(), nn.Linear(d[2], d[3]))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = (torch.from_numpy(a) for a in make_batch(cfg))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step, (lambda loss: loss.item()), dict


def _nnx_model(cfg: dict):
    """The hand-written Flax NNX model (Linear layers; NCHW lax convolutions with OIHW nnx.Param kernels)."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    rngs = nnx.Rngs(0)

    class ConvNCHW(nnx.Module):
        def __init__(self, cin, cout, rngs):
            self.w = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (cout, cin, 3, 3)))
            self.b = nnx.Param(jnp.zeros((cout,)))

        def __call__(self, x):
            y = jax.lax.conv_general_dilated(
                x, self.w[...], (2, 2), ((1, 1), (1, 1)), dimension_numbers=("NCHW", "OIHW", "NCHW")
            )
            return y + self.b[...][None, :, None, None]

    class MLP(nnx.Module):
        def __init__(self, d):
            self.fc1, self.fc2, self.fc3 = (nnx.Linear(a, b, rngs=rngs) for a, b in zip(d[:-1], d[1:]))

        def __call__(self, x):
            return self.fc3(nnx.relu(self.fc2(nnx.relu(self.fc1(x)))))

    class CNN(nnx.Module):
        def __init__(self, cfg):
            (c, _, _), (c1, c2) = cfg["image"], cfg["chans"]
            self.conv1, self.conv2 = ConvNCHW(c, c1, rngs), ConvNCHW(c1, c2, rngs)
            self.fc1 = nnx.Linear(cfg["flat"], cfg["hidden"], rngs=rngs)
            self.fc2 = nnx.Linear(cfg["hidden"], cfg["classes"], rngs=rngs)

        def __call__(self, x):
            x = nnx.relu(self.conv2(nnx.relu(self.conv1(x))))
            return self.fc2(nnx.relu(self.fc1(x.reshape(x.shape[0], -1))))

    return CNN(cfg) if cfg["name"] == "cnn" else MLP(cfg["dims"])


def _nnx_setup(cfg: dict):
    import jax.numpy as jnp
    import optax
    from flax import nnx

    model = _nnx_model(cfg)
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    x, y = (jnp.asarray(a) for a in make_batch(cfg))

    def loss_fn(m, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(m(x), y).mean()

    return model, optimizer, x, y, loss_fn


def _jax_sync(loss):
    import jax

    return float(jax.block_until_ready(loss))


def build_jax_functional(cfg: dict):
    """Hand-written split/merge step under a plain jax.jit with donated state; returns (step, sync, info)."""
    import jax
    from flax import nnx

    model, optimizer, x, y, loss_fn = _nnx_setup(cfg)
    graphdef, state = nnx.split((model, optimizer))
    del model, optimizer

    def train_step(state, x, y):
        model, optimizer = nnx.merge(graphdef, state)
        loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer)), loss

    jitted = jax.jit(train_step, donate_argnums=0)
    box = [state]

    def step():
        box[0], loss = jitted(box[0], x, y)
        return loss

    return step, _jax_sync, dict


def build_jax_nnxjit(cfg: dict):
    """Hand-written canonical ``@nnx.jit train_step(model, optimizer, x, y)``; returns (step, sync, info)."""
    from flax import nnx

    model, optimizer, x, y, loss_fn = _nnx_setup(cfg)

    @nnx.jit
    def train_step(model, optimizer, x, y):
        loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
        optimizer.update(model, grads)
        return loss

    return (lambda: train_step(model, optimizer, x, y)), _jax_sync, dict


BUILDERS = {
    "nebulae-torch": build_nebulae,
    "nebulae-jax": build_nebulae,
    "torch-eager": build_torch_eager,
    "jax-functional": build_jax_functional,
    "jax-nnxjit": build_jax_nnxjit,
}


def worker_main(contender: str, workload: str, quick: bool) -> None:
    """Worker process: build `contender` for `workload`, then answer setup / rep / finish commands."""
    cfg = workload_config(workload, quick)
    live = {}

    def setup(warmup: int) -> dict:
        step, sync, info = BUILDERS[contender](cfg)
        first, _ = common.time_block(lambda: sync(step()))
        for _ in range(warmup):
            sync(step())
        live.update(step=step, sync=sync, info=info)
        threads = None
        if contender in ENGINE:
            import torch

            threads = torch.get_num_threads()
        return {"first_step": first, "threads": threads, "core": os.environ.get("NEB_CORE")}

    def rep(steps: int) -> dict:
        return {"seconds": common.timed_steps(live["step"], live["sync"], steps)}

    def finish() -> dict:
        return {"peak_rss_mb": common.peak_rss_mb(), **live["info"]()}

    if contender in ENGINE:  # import the engine now: setup then times only building and the first step
        import torch  # noqa: F401
    else:
        import jax  # noqa: F401
        from flax import nnx  # noqa: F401
    common.serve({"setup": setup, "rep": rep, "finish": finish})


def bench_workload(name: str, args, order_shift: int) -> dict[str, dict]:
    """Run every contender on workload `name` (each in its own worker); return per-contender results."""
    cfg = workload_config(name, args.quick)
    steps = args.steps or cfg["steps"]
    warmup = 1 if args.quick else 3
    flags = ["--contender", "", "--workload", name] + (["--quick"] if args.quick else [])
    workers, results = [], {}

    def spawn(c: str) -> common.Worker:
        flags[1] = c
        workers.append(common.Worker(c, "benchmarks.train_step", flags, env={"NEB_CORE": ENGINE.get(c, "jax")}))
        return workers[-1]

    try:
        order = common.rotated(CONTENDERS, order_shift)
        if args.quick:  # start all interpreters at once (imports overlap); setups still run one at a time
            for c in order:
                spawn(c)
        for i, c in enumerate(order):  # set-up and first step (compile) one worker at a time
            w = workers[i] if args.quick else spawn(c)
            results[c] = w.request("setup", warmup=warmup)
            print(f"  [{name}] {c}: first step {results[c]['first_step']:.3f} s", file=sys.stderr, flush=True)
        workers.sort(key=lambda w: CONTENDERS.index(w.name))
        reps = common.interleave(workers, args.reps, steps=steps)
        for w in workers:
            results[w.name]["rates"] = [steps / r["seconds"] for r in reps[w.name]]
            results[w.name].update(w.request("finish"))
    finally:
        for w in workers:
            w.close()
    return results


def report(all_results: dict[str, dict[str, dict]], out_dir: Path) -> str:
    """Format the table and ratios, write ``train_step.csv`` into `out_dir`; return the text."""
    rows, csv_rows = [], []
    for wl, res in all_results.items():
        for c in CONTENDERS:
            r = res[c]
            med, lo, hi = common.median_range(r["rates"])
            threads = "-" if r["threads"] is None else r["threads"]
            rows.append([wl, c, f"{r['first_step']:.3f}", common.fmt_spread(med, lo, hi), threads])
            rows[-1].append(f"{r['peak_rss_mb']:.0f}")
            note = f"traces={r['traces']}" if "traces" in r else ""
            csv_rows.append(["steps/s", wl, c, "", r["first_step"], med, lo, hi, r["threads"], r["peak_rss_mb"], note])
    lines = [common.format_table(HEADERS, rows), "", "ratios (per interleaved repetition: median (min–max)):"]
    ratio_rows = []
    for wl, res in all_results.items():
        for a, b in RATIOS:
            pairs = [x / y for x, y in zip(res[a]["rates"], res[b]["rates"])]
            med, lo, hi = common.median_range(pairs)
            of_medians = common.median_range(res[a]["rates"])[0] / common.median_range(res[b]["rates"])[0]
            ratio_rows.append([wl, f"{a} / {b}", common.fmt_spread(med, lo, hi, 3), f"{of_medians:.3f}"])
            csv_rows.append(["ratio", wl, a, b, "", med, lo, hi, "", "", f"ratio of medians={of_medians:.4f}"])
    lines.append(common.format_table(("workload", "ratio", "paired", "of medians"), ratio_rows))
    for wl, res in all_results.items():
        traces = res["nebulae-jax"].get("traces")
        if traces is not None and traces != 1:
            lines.append(f"WARNING: nebulae-jax traced its {wl} step {traces} times (expected 1)")
    headers = ("kind", "workload", "contender", "baseline", "first_step_s", "median", "min", "max")
    headers += ("torch_threads", "peak_rss_mb", "note")
    path = common.write_csv(out_dir / "train_step.csv", headers, csv_rows)
    lines.append(f"CSV: {path}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Command line entry point (also the worker entry point with ``--worker``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny models and few steps (< 60 s in all)")
    p.add_argument("--workloads", default="mlp,cnn", help="comma-separated subset of: mlp,cnn")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions per contender (default 7; quick 2)")
    p.add_argument("--steps", type=int, default=None, help="steps per repetition (default 30 MLP, 5 CNN)")
    p.add_argument("--out", default="bench_out", help="folder for train_step.csv")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--contender", help=argparse.SUPPRESS)
    p.add_argument("--workload", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker_main(args.contender, args.workload, args.quick)
        return 0
    args.reps = args.reps or (2 if args.quick else 7)
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    unknown = sorted(set(names) - set(FULL))
    if unknown:
        p.error(f"unknown workload(s) {unknown}; choose from {sorted(FULL)}")
    results = {n: bench_workload(n, args, order_shift=i) for i, n in enumerate(names)}
    print(report(results, Path(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
