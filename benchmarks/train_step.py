"""Train-step throughput (steps/s, CPU): nebulae on each engine against hand-written baselines.

Workloads (Adam lr 1e-3, softmax cross-entropy, one fixed random batch):
- ``mlp``: 784-512-512-10 with ReLU, batch 256.
- ``cnn``: NCHW 3x32x32 input, conv3x3 3->32 (padding 1) + ReLU + 2x2 max-pool, conv3x3 32->64
  (padding 1) + ReLU + 2x2 max-pool, dense 4096->128 + ReLU, dense 128->10; batch 128 (the CNN
  of shared/reference/env.md §3, in NCHW for every contender). Pooling is ``dock.MaxPool((2, 2))``,
  ``nn.MaxPool2d(2)`` and ``lax.reduce_window(max)`` respectively.
- ``cnn-s2`` (not in the default set): the same CNN with each conv + max-pool replaced by one
  stride-2 conv3x3 (padding 1): same shapes, a quarter of the convolution FLOPs, no pooling op.
- ``resnet``: ResNet-18 v1.5 with BatchNorm (train mode), 10 classes: ``hangar.ResNet(18)`` for
  nebulae, `benchmarks.resnet` for the baselines; 3x32x32 batch 32 on CPU, 3x224x224 batch 64 with
  ``--gpu``.
- ``resnet50`` (``--gpu`` and ``--quick`` sizes only, not in the default set): ResNet-50 v1.5
  (bottlenecks), ``hangar.ResNet(50)`` against `benchmarks.resnet`; 3x224x224 batch 64 with ``--gpu``.
With ``--gpu`` every workload is bigger (see `GPU`) and runs on the first GPU (nebulae: ``Engine(GPU)``).
``--precision bf16`` (or ``both``) runs every workload in mixed bf16 too, with float32 weights: nebulae
``net.mixp("bfloat16")``; torch ``torch.autocast(<device>, torch.bfloat16)`` around forward and loss; the
NNX baselines cast the input to bf16 and compute their layers in bf16 (float32 parameters, as nebulae's
JAX mixp); Keras ``keras.mixed_precision.set_global_policy("mixed_bfloat16")``. Those rows have the
workload label ``<workload> bf16`` and ``precision`` bf16 (fp32 rows keep the plain workload name).

Contenders, each in its own interpreter (``NEB_CORE`` set for the nebulae ones):
- ``nebulae-torch`` / ``nebulae-jax``: the model and a seed-style ``Train`` step craft written once
  with ``nebulae.astro.dock``; on JAX each ``train(x, z)`` runs one cached ``jax.jit`` step.
- ``torch-eager``: plain torch modules, torch.optim.Adam, F.cross_entropy, zero_grad/backward/step.
- ``jax-functional``: Flax NNX, ``nnx.split((model, optimizer))`` and a plain
  ``jax.jit(step, donate_argnums=0)`` doing merge -> value_and_grad -> optimizer.update -> state.
- ``jax-nnxjit``: the canonical ``@nnx.jit def train_step(model, optimizer, x, y)``.
- opt-in, only when named in ``--contenders`` (inductor compiles for tens of seconds per workload on a
  CPU): ``nebulae-torch-compiled``, the nebulae step with ``train.compile()`` (its forward, losses
  included, through torch.compile; backward compiled with it; optimizer eager), against
  ``torch-compiled``, ``torch-eager`` with ``model = torch.compile(model)`` (target >= 0.97).
The hand-written JAX models use ``nnx.Linear`` for dense layers and, for convolutions,
``jax.lax.conv_general_dilated`` on NCHW data with OIHW kernels held in ``nnx.Param`` (the layout
nebulae uses on JAX; nnx.Conv would need NHWC), so the JAX contenders run the same FLOPs in the
same layout.

Method: each worker builds its model, times its first step (compile on JAX; reported separately)
and runs a few more warm-up steps; then R repetitions of S steps are interleaved across the live
workers in rotated order (see benchmarks.common), each ending with a device sync (``dock.shell`` /
``loss.item()`` / ``jax.block_until_ready``). Every workload gets fresh workers (so peak RSS is per
workload); ``--rounds K`` repeats this with fresh processes (start order rotated) and pools the K*R
repetitions, which also averages over process-to-process variation. ``--until-separated N`` then adds
rounds (fresh processes) to a workload while the 95 % confidence interval of the median of a targeted
ratio (`benchmarks.common.median_ci`) straddles its target, up to N rounds in all and while the suite
has run less than ``--separate-budget`` seconds. Under ``--quick`` one worker
per contender serves every workload and set-ups overlap (fast; RSS cumulative, first steps not clean).
Reported: median steps/s (min-max), CPU/wall, CPU threads, peak RSS (and peak device memory on a
GPU), and ratios per repetition pair (median, min-max) and of the medians. A contender that fails
(e.g. its step does not build) is shown as FAILED, the others still run, and the exit status is 1.
`collect` gives the same as unified rows for `benchmarks.run`.

Usage (repository root): ``PYTHONPATH=. python benchmarks/train_step.py [--quick | --gpu]
[--workloads mlp,cnn,cnn-s2,resnet,resnet50] [--contenders a,b] [--reps R] [--steps S] [--rounds K]
[--until-separated N] [--precision fp32|bf16|both] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script (python benchmarks/x.py): import it as a module of `benchmarks`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import benchmarks  # noqa: F401 (the parent package of the relative imports below)

    __package__ = "benchmarks"

import numpy as np

from . import common, memory, peers

SUITE = "train_step"
TARGET = ">= 0.95"  # every nebulae / baseline steps/s ratio
CONTENDERS = ("nebulae-torch", "torch-eager", "nebulae-jax", "jax-functional", "jax-nnxjit")
ENGINE = {"nebulae-torch": "pytorch", "torch-eager": "pytorch"}  # the rest: "jax"
RATIOS = (("nebulae-torch", "torch-eager"), ("nebulae-jax", "jax-functional"), ("nebulae-jax", "jax-nnxjit"))
# opt-in (name them in --contenders): torch.compile'd steps; inductor's C++ build adds tens of seconds per workload
COMPILED = ("nebulae-torch-compiled", "torch-compiled")
DEFAULT_CONTENDERS = CONTENDERS  # what runs when --contenders is not given
CONTENDERS += COMPILED
ENGINE.update(dict.fromkeys(COMPILED, "pytorch"))
RATIOS += (COMPILED,)
TARGETS = {COMPILED: ">= 0.97"}  # ratios whose target is not TARGET
# `--peers keras`: Keras 3 contenders (benchmarks.peers), run only when asked; their ratios get no target
PEERS = {"keras": peers.NAMES}
PEER_NAMES = tuple(c for names in PEERS.values() for c in names)
EVERY_CONTENDER = (*CONTENDERS, *PEER_NAMES)  # the order of tables and reports
ENGINE.update(peers.ENGINE)
PEER_RATIOS = (
    ("nebulae-torch", "keras-torch-tob"),
    ("nebulae-torch", "keras-torch-fit"),
    ("nebulae-jax", "keras-jax-tob"),
    ("nebulae-jax", "keras-jax-fit"),
)
RATIOS += PEER_RATIOS
HEADERS = ("workload", "contender", "first step s", "median steps/s (min–max)", "CPU/wall", "threads", "peak RSS MB")
CSV_HEADERS = ("kind", "workload", "contender", "baseline", "first_step_s", "median", "min", "max", "cpu_per_wall")
CSV_HEADERS += ("torch_threads", "peak_rss_mb", "per_rep", "note")

_CNN = {"image": (3, 32, 32), "chans": (32, 64), "hidden": 128, "classes": 10, "batch": 128, "steps": 5}
_TINY_CNN = {"image": (3, 8, 8), "chans": (4, 8), "hidden": 16, "classes": 10, "batch": 8, "steps": 2}
_RESNET = {"depth": 18, "classes": 10}
FULL = {
    "mlp": {"dims": (784, 512, 512, 10), "batch": 256, "steps": 30},
    "cnn": dict(_CNN, pool="max"),
    "cnn-s2": dict(_CNN, pool="stride"),
    "resnet": dict(_RESNET, image=(3, 32, 32), batch=32, steps=3),
}
QUICK = {
    "mlp": {"dims": (64, 32, 32, 10), "batch": 16, "steps": 3},
    "cnn": dict(_TINY_CNN, pool="max"),
    "cnn-s2": dict(_TINY_CNN, pool="stride"),
    "resnet": dict(_RESNET, image=(3, 16, 16), batch=2, steps=1),
    "resnet50": dict(_RESNET, depth=50, image=(3, 32, 32), batch=2, steps=1),
}
GPU = {
    "mlp": {"dims": (784, 512, 512, 10), "batch": 1024, "steps": 100},
    "cnn": dict(_CNN, pool="max", batch=512, steps=50),
    "cnn-s2": dict(_CNN, pool="stride", batch=512, steps=50),
    "resnet": dict(_RESNET, image=(3, 224, 224), batch=64, steps=20),
    "resnet50": dict(_RESNET, depth=50, image=(3, 224, 224), batch=64, steps=10),
}
SIZES = {"quick": QUICK, "cpu": FULL, "gpu": GPU}
QUICK_SKIP = {"resnet": ("jax-nnxjit",), "resnet50": ("jax-nnxjit",)}  # a third ResNet compile doubles JAX time
WORKLOADS = tuple(dict.fromkeys(n for sizes in SIZES.values() for n in sizes))  # every workload of some size
PRECISIONS = ("fp32", "bf16")
SEPARATE_BUDGET_S = 420.0  # --until-separated starts no new round once the suite has run this long


def label(workload: str, precision: str = "fp32") -> str:
    """The workload's name in tables and rows: `workload` in fp32, '<workload> bf16' in bf16."""
    return workload if precision == "fp32" else f"{workload} {precision}"


def split_label(text: str) -> tuple[str, str]:
    """(workload, precision) of a `label`."""
    name, _, precision = text.partition(" ")
    return name, precision or "fp32"


def precisions_of(choice: str) -> list[str]:
    """The precisions of a ``--precision`` choice: 'fp32', 'bf16' or 'both'."""
    if choice == "both":
        return list(PRECISIONS)
    if choice not in PRECISIONS:
        raise ValueError(f"--precision takes fp32, bf16 or both, got {choice!r}")
    return [choice]


def workload_config(name: str, size: str = "cpu") -> dict:
    """The configuration of workload `name` for `size` ('quick', 'cpu' or 'gpu'), derived fields filled in."""
    if name not in WORKLOADS:
        raise ValueError(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
    if name not in SIZES[size]:
        sizes = [k for k, v in SIZES.items() if name in v]
        raise ValueError(f"workload {name!r} has no {size!r} size; it runs with sizes {sizes} (--quick / --gpu)")
    cfg = dict(SIZES[size][name], name=name, gpu=size == "gpu", precision="fp32")
    if "pool" in cfg:
        c, h, w = cfg["image"]
        cfg["flat"] = cfg["chans"][1] * (h // 4) * (w // 4)  # two 2x2 max-pools or two stride-2 convolutions
        cfg["stride"] = 2 if cfg["pool"] == "stride" else 1
        cfg["kind"] = "cnn"
    elif "depth" in cfg:
        cfg["kind"] = "resnet"
    else:
        cfg["classes"] = cfg["dims"][-1]
        cfg["kind"] = "mlp"
    return cfg


def make_batch(cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    """The fixed random batch: float32 inputs and int64 labels."""
    rng = np.random.default_rng(0)
    shape = (cfg["batch"], *cfg["image"]) if "image" in cfg else (cfg["batch"], cfg["dims"][0])
    x = rng.standard_normal(shape, dtype=np.float32)
    y = rng.integers(0, cfg["classes"], size=cfg["batch"], dtype=np.int64)
    return x, y


def mlp_craft(dock, dims: list[int]):
    """The benchmarks' MLP written with dock: three Dense layers `dims[0] -> ... -> dims[3]`, Relu between."""

    class MLP(dock.Craft):
        def __init__(self, dims):
            super().__init__("MLP")
            self.fc1, self.fc2, self.fc3 = (dock.Dense(a, b) for a, b in zip(dims[:-1], dims[1:]))
            self.relu1, self.relu2 = dock.Relu(), dock.Relu()

        def run(self, x):
            return self.fc3(self.relu2(self.fc2(self.relu1(self.fc1(x)))))

    return MLP(dims)


def train_craft(dock, net, scope: str = "TRAIN"):
    """The seed-style training step of `net`: softmax cross-entropy, Adam(lr=1e-3), inside a Rudder."""

    class Train(dock.Craft):
        def __init__(self, net, scope):
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

    return Train(net, scope)


def build_nebulae(cfg: dict, compiled: bool = False):
    """The model and seed-style Train craft written with dock (`compiled`: `train.compile()`, torch.compile on
    torch); returns (step, sync, info)."""
    from nebulae import law
    from nebulae.astro import dock, hangar

    class CNN(dock.Craft):
        def __init__(self, cfg):
            super().__init__("CNN")
            (c, _, _), (c1, c2) = cfg["image"], cfg["chans"]
            self.conv1 = dock.Conv(c, c1, (3, 3), stride=cfg["stride"], padding=1)
            self.conv2 = dock.Conv(c1, c2, (3, 3), stride=cfg["stride"], padding=1)
            pooled = cfg["pool"] == "max"
            self.pool1, self.pool2 = (dock.MaxPool((2, 2)) if pooled else dock.Identity() for _ in range(2))
            self.fc1 = dock.Dense(cfg["flat"], cfg["hidden"])
            self.fc2 = dock.Dense(cfg["hidden"], cfg["classes"])
            self.relu1, self.relu2, self.relu3 = dock.Relu(), dock.Relu(), dock.Relu()

        def run(self, x):
            x = self.pool1(self.relu1(self.conv1(x)))
            x = self.pool2(self.relu2(self.conv2(x)))
            return self.fc2(self.relu3(self.fc1(x.reshape(x.shape[0], -1))))

    if cfg["kind"] == "resnet":
        net = hangar.ResNet(cfg["depth"], nclass=cfg["classes"], in_shape=cfg["image"])
    else:
        net = CNN(cfg) if cfg["kind"] == "cnn" else mlp_craft(dock, cfg["dims"])
    if cfg["precision"] == "bf16":
        net.mixp("bfloat16")
    train = train_craft(dock, net)
    if compiled:
        train.compile()
    if cfg["gpu"]:
        from nebulae.cockpit.engine import GPU, Engine

        Engine(GPU).place(train)
    x, z = (dock.coat(a) for a in make_batch(cfg))

    def info():
        traces = {"traces": int(train.traces)} if law.Law.CORE == "jax" or compiled else {}
        return {"nparams": hangar.nparams(net), **traces}  # the Keras peers must match it (benchmarks.peers)

    return (lambda: train(x, z)), dock.shell, info


def build_torch_eager(cfg: dict, compiled: bool = False):
    """Hand-written eager torch: nn modules, torch.optim.Adam, F.cross_entropy (`compiled`: `model =
    torch.compile(model)`, the optimizer step eager as in nebulae's compiled step); returns (step, sync, info)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(0)
    if cfg["kind"] == "resnet":
        from .resnet import torch_resnet

        model = torch_resnet(cfg["depth"], cfg["classes"])
    elif cfg["kind"] == "cnn":
        (c, _, _), (c1, c2), st = cfg["image"], cfg["chans"], cfg["stride"]
        pool = nn.MaxPool2d(2) if cfg["pool"] == "max" else nn.Identity()
        model = nn.Sequential(
            nn.Conv2d(c, c1, 3, stride=st, padding=1),
            nn.ReLU(),
            pool,
            nn.Conv2d(c1, c2, 3, stride=st, padding=1),
            nn.ReLU(),
            pool,
            nn.Flatten(),
            nn.Linear(cfg["flat"], cfg["hidden"]),
            nn.ReLU(),
            nn.Linear(cfg["hidden"], cfg["classes"]),
        )
    else:
        d = cfg["dims"]
        model = nn.Sequential(nn.Linear(d[0], d[1]), nn.ReLU(), nn.Linear(d[1], d[2]), nn.ReLU(), nn.Linear(d[2], d[3]))
    device = torch.device("cuda" if cfg["gpu"] else "cpu")
    model.to(device).train()
    if compiled:
        model = torch.compile(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = (torch.from_numpy(a).to(device) for a in make_batch(cfg))

    bf16 = cfg["precision"] == "bf16"

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
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
    dtype = jnp.bfloat16 if cfg["precision"] == "bf16" else None  # compute dtype; parameters stay float32

    class ConvNCHW(nnx.Module):
        def __init__(self, cin, cout, stride, rngs):
            self.w = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (cout, cin, 3, 3)))
            self.b = nnx.Param(jnp.zeros((cout,)))
            self.stride = (stride, stride)

        def __call__(self, x):
            w, b = (p[...] if dtype is None else p[...].astype(dtype) for p in (self.w, self.b))
            y = jax.lax.conv_general_dilated(
                x, w, self.stride, ((1, 1), (1, 1)), dimension_numbers=("NCHW", "OIHW", "NCHW")
            )
            return y + b[None, :, None, None]

    def pool(x):
        if cfg.get("pool") != "max":
            return x
        return jax.lax.reduce_window(x, np.array(-np.inf, x.dtype), jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    class MLP(nnx.Module):
        def __init__(self, d):
            self.fc1, self.fc2, self.fc3 = (nnx.Linear(a, b, dtype=dtype, rngs=rngs) for a, b in zip(d[:-1], d[1:]))

        def __call__(self, x):
            return self.fc3(nnx.relu(self.fc2(nnx.relu(self.fc1(x)))))

    class CNN(nnx.Module):
        def __init__(self, cfg):
            (c, _, _), (c1, c2) = cfg["image"], cfg["chans"]
            self.conv1 = ConvNCHW(c, c1, cfg["stride"], rngs)
            self.conv2 = ConvNCHW(c1, c2, cfg["stride"], rngs)
            self.fc1 = nnx.Linear(cfg["flat"], cfg["hidden"], dtype=dtype, rngs=rngs)
            self.fc2 = nnx.Linear(cfg["hidden"], cfg["classes"], dtype=dtype, rngs=rngs)

        def __call__(self, x):
            x = pool(nnx.relu(self.conv2(pool(nnx.relu(self.conv1(x))))))
            return self.fc2(nnx.relu(self.fc1(x.reshape(x.shape[0], -1))))

    if cfg["kind"] == "resnet":
        from .resnet import nnx_resnet

        return nnx_resnet(cfg["depth"], cfg["classes"], compute_dtype="bfloat16" if dtype is not None else None)
    return CNN(cfg) if cfg["kind"] == "cnn" else MLP(cfg["dims"])


def _nnx_setup(cfg: dict):
    """Model, nnx.Optimizer (optax.adam, wrt=nnx.Param), device batch and loss function for the JAX baselines."""
    import jax.numpy as jnp
    import optax
    from flax import nnx

    model = _nnx_model(cfg)
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    x, y = (jnp.asarray(a) for a in make_batch(cfg))

    bf16 = cfg["precision"] == "bf16"

    def loss_fn(m, x, y):
        logits = m(x.astype(jnp.bfloat16)) if bf16 else m(x)  # mixed bf16: the input cast inside the jitted step
        return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), y).mean()

    return model, optimizer, x, y, loss_fn


def _jax_sync(loss):
    """Wait for the step that produced `loss`; return it as a float."""
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
    "nebulae-torch-compiled": lambda cfg: build_nebulae(cfg, compiled=True),
    "torch-compiled": lambda cfg: build_torch_eager(cfg, compiled=True),
}
BUILDERS.update({c: (lambda cfg, c=c: peers.build_keras(c, cfg)) for c in PEER_NAMES})


def worker_main(contender: str, size: str) -> None:
    """Worker process: answer setup(workload) / rep / finish commands for `contender` at `size`."""
    live = {}

    def setup(workload: str, warmup: int, precision: str = "fp32") -> dict:
        live.clear()
        cfg = dict(workload_config(workload, size), precision=precision)
        build, (step, sync, info) = common.time_block(lambda: BUILDERS[contender](cfg))
        first, _ = common.time_block(lambda: sync(step()))
        for _ in range(warmup):
            sync(step())
        live.update(step=step, sync=sync, info=info)
        threads = memory.thread_counts()
        return {"build": build, "first_step": first, "threads": threads.get("torch_threads"), "thread_info": threads}

    def rep(steps: int) -> dict:
        wall, cpu = common.timed_steps(live["step"], live["sync"], steps)
        return {"seconds": wall, "cpu_seconds": cpu}

    def finish() -> dict:
        mem = memory.peak_memory()
        return {"peak_rss_mb": mem["peak_rss_mb"], "memory": mem, **live["info"]()}

    # import the engine (and keras) now: setup then times only building and the first step
    if contender in PEER_NAMES:
        import keras  # noqa: F401 (its backend: KERAS_BACKEND in this worker's environment, see peers.ENV)
    elif contender in ENGINE:
        import torch  # noqa: F401
    else:
        import jax  # noqa: F401
        from flax import nnx  # noqa: F401
    same_float32(ENGINE.get(contender, "jax"))
    common.serve({"setup": setup, "rep": rep, "finish": finish})


def same_float32(engine: str) -> None:
    """Give every contender the float32 precision nebulae's own steps get from Law.FLOAT32 (NEB_FLOAT32, default
    'full'): left alone, XLA on a GPU runs TF32-class products and torch TF32 cuDNN convolutions."""
    tf32 = os.environ.get("NEB_FLOAT32", "full").strip().lower() == "tf32"
    if engine == "pytorch":
        import torch

        torch.set_float32_matmul_precision("high" if tf32 else "highest")
        torch.backends.cudnn.allow_tf32 = tf32
    else:
        import jax

        jax.config.update("jax_default_matmul_precision", "high" if tf32 else "highest")


def contenders_for(workload: str, args) -> list[str]:
    """The contenders that run `workload` (a `label`; under --quick the ResNets skip the slow-compiling @nnx.jit)."""
    skip = QUICK_SKIP.get(split_label(workload)[0], ()) if args.quick else ()
    return [c for c in args.contenders if c not in skip]


def target_of(a: str, b: str) -> str:
    """The target of the steps/s ratio `a` / `b` ('' for the peers' ratios)."""
    return "" if b in PEER_NAMES else TARGETS.get((a, b), TARGET)


def paired(res: dict[str, dict], a: str, b: str) -> list[float] | None:
    """The per-repetition ratios `a` / `b` of one workload's results; None when either is missing or failed."""
    if a not in res or b not in res or "error" in res[a] or "error" in res[b]:
        return None
    return [x / y for x, y in zip(res[a]["rates"], res[b]["rates"])]


def unseparated(res: dict[str, dict]) -> list[str]:
    """The targeted ratios of one workload's results whose median's confidence interval straddles the target."""
    out = []
    for a, b in RATIOS:
        pairs, target = paired(res, a, b), target_of(a, b)
        if pairs and target:
            low, high = common.median_ci(pairs)[:2]
            if common.verdict(0.0, low, high, target) == common.NOISE:
                out.append(f"{a} / {b}")
    return out


def bench(names: list[str], args) -> dict[str, dict[str, dict]]:
    """Every workload of `names` at each precision of `args.precisions`: {label: {contender: pooled result}}.

    Default: each workload gets `args.rounds` rounds of fresh workers (one per contender, so peak RSS
    is per workload), then, with `args.until_separated` = N > 0, more rounds while a targeted ratio's
    confidence interval straddles its target, up to N rounds and while the suite has run less than
    `args.separate_budget` seconds. Under --quick one round of workers serves all workloads (RSS is
    cumulative) and no rounds are added.
    """
    start = time.perf_counter()
    labels = [label(n, p) for p in getattr(args, "precisions", ["fp32"]) for n in names]
    groups = [labels] if args.quick else [[n] for n in labels]
    cap = 0 if args.quick else getattr(args, "until_separated", 0) or 0
    budget = getattr(args, "separate_budget", SEPARATE_BUDGET_S)
    out: dict[str, dict[str, dict]] = {}
    rounds = [0] * len(groups)

    def run_round(i: int) -> None:
        for wl, res in bench_round(groups[i], args, i + rounds[i]).items():
            _pool(out.setdefault(wl, {}), res)
        rounds[i] += 1

    for i in range(len(groups)):
        for _ in range(args.rounds):
            run_round(i)
    added = True
    while added:  # the added rounds go to the straddling workloads in turn, not all to the first one
        added = False
        for i, group in enumerate(groups):
            straddling = [f"{wl}: {r}" for wl in group for r in unseparated(out.get(wl, {}))]
            if not straddling or rounds[i] >= cap or time.perf_counter() - start >= budget:
                continue
            print(f"  round {rounds[i] + 1}: CI straddles the target for {', '.join(straddling)}", file=sys.stderr)
            run_round(i)
            added = True
    for group, k in zip(groups, rounds):
        for wl in group:
            for p in out.get(wl, {}).values():
                p["rounds"] = k
    for error in peers.check_params(out):
        print(f"  FAILED: {error}", file=sys.stderr, flush=True)
    for res in out.values():
        for p in res.values():
            if "error" not in p:
                p["first_step"] = common.median_range(p["first_steps"])[0]
    return out


def _pool(pooled: dict[str, dict], round_results: dict[str, dict]) -> None:
    """Add one round's results to `pooled`: repetitions appended in the same order for every contender
    (so they stay paired), first steps collected, the largest memory figures and trace count kept."""
    for c, r in round_results.items():
        if "error" in r or "error" in pooled.get(c, {}):
            pooled[c] = pooled.get(c) if "error" in pooled.get(c, {}) else r
            continue
        p = pooled.setdefault(c, {"rates": [], "cpu_wall": [], "first_steps": [], "memory": {}})
        p["rates"] += r["rates"]
        p["cpu_wall"] += r["cpu_wall"]
        p["first_steps"].append(r["first_step"])
        for key, value in r["memory"].items():
            p["memory"][key] = max(p["memory"].get(key, 0.0), value)
        p["peak_rss_mb"] = p["memory"]["peak_rss_mb"]
        p["threads"], p["thread_info"] = r["threads"], r["thread_info"]
        if "traces" in r:
            p["traces"] = max(p.get("traces", 0), r["traces"])
        if "nparams" in r:
            p["nparams"] = r["nparams"]


def bench_round(names: list[str], args, order_shift: int) -> dict[str, dict[str, dict]]:
    """One worker per contender serves the workloads `names` in turn; {workload: {contender: result}}.

    Set-ups (building + first step + warm-up) run one worker at a time, except under --quick where
    they overlap (faster; first-step times are then not clean). Then the repetitions of the live
    workers are interleaved in rotated order (see benchmarks.common).
    """
    size = "quick" if args.quick else "gpu" if args.gpu else "cpu"
    warmup = 1 if args.quick else 3
    needed = [c for c in args.contenders if any(c in contenders_for(n, args) for n in names)]
    env = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"} if args.gpu else {}  # as nebulae's Engine(GPU) sets it
    flags = {c: ["--contender", c, "--size", size] for c in needed}
    envs = {c: {"NEB_CORE": ENGINE.get(c, "jax"), **peers.ENV.get(c, {}), **env} for c in needed}  # + KERAS_BACKEND
    workers = {
        c: common.Worker(c, f"{common.PACKAGE}.train_step", flags[c], envs[c])
        for c in common.rotated(needed, order_shift)
    }
    out: dict[str, dict[str, dict]] = {}
    try:
        for name in names:
            results = out[name] = {}
            workload, precision = split_label(name)
            wanted = [c for c in common.rotated(needed, order_shift) if c in contenders_for(name, args)]
            order = [c for c in wanted if workers[c].proc.poll() is None]
            for c in set(wanted) - set(order):
                results[c] = {"error": f"{c}: its worker exited during an earlier workload"}
            steps = args.steps or workload_config(workload, size)["steps"]
            request = {"workload": workload, "warmup": warmup, "precision": precision}
            if args.quick:
                for c in order:
                    workers[c].send("setup", **request)
            for c in order:
                try:
                    if args.quick:
                        results[c] = workers[c].receive("setup")
                    else:
                        results[c] = workers[c].request("setup", **request)
                except common.WorkerError as e:  # reported in the table; the other contenders go on
                    results[c] = {"error": str(e)}
                    print(f"  [{name}] {c}: FAILED\n{e}", file=sys.stderr, flush=True)
                    continue
                took = f"build {results[c]['build']:.3f} s, first step {results[c]['first_step']:.3f} s"
                print(f"  [{name}] {c}: {took}", file=sys.stderr, flush=True)
            live = [workers[c] for c in EVERY_CONTENDER if c in order and "error" not in results[c]]
            reps = common.interleave(live, args.reps, pause=0.0 if args.quick else 0.2, steps=steps)
            for w in live:
                results[w.name]["rates"] = [steps / r["seconds"] for r in reps[w.name]]
                results[w.name]["cpu_wall"] = [r["cpu_seconds"] / r["seconds"] for r in reps[w.name]]
                results[w.name].update(w.request("finish"))
    finally:
        for w in workers.values():
            w.close()
    return out


def rows(all_results: dict[str, dict[str, dict]]) -> list[dict]:
    """The unified result rows (see benchmarks.common.RESULT_FIELDS) of `bench`'s results."""
    out = []
    for wl, res in all_results.items():
        precision = split_label(wl)[1]
        start = len(out)
        for c in (c for c in EVERY_CONTENDER if c in res):
            r = res[c]
            if "error" in r:
                out.append(common.failed(SUITE, wl, c, "steps/s", r["error"]))
                continue
            cpu = common.median_range(r["cpu_wall"])[0]
            note = f"CPU/wall {cpu:.2f}" + (f"; traces={r['traces']}" if "traces" in r else "")
            note += f"; {r['params']}" if "params" in r else ""
            note += f"; {r['rounds']} rounds" if r.get("rounds", 1) > 1 else ""
            base = common.result(SUITE, wl, c, "steps/s", r["rates"], "steps/s", note)
            compared = False
            for a, b in RATIOS:
                pairs = paired(res, a, b) if a == c else None
                if pairs is not None:
                    out.append(common.with_ratio(base, b, pairs, target_of(a, b)))
                    compared = True
            if not compared:
                out.append(base)
            out.append(common.result(SUITE, wl, c, "first step", r["first_steps"], "s", "build + first step (compile)"))
            out += common.memory_rows(SUITE, wl, c, r["memory"])
            threads = r["thread_info"]
            count = threads.get("torch_threads", threads.get("xla_cpu_threads"))
            if count is not None:
                what = "torch.get_num_threads()" if "torch_threads" in threads else "XLA CPU: one per visible core"
                out.append(common.result(SUITE, wl, c, "CPU threads", [count], "threads", what))
        for row in out[start:]:
            row["precision"] = precision
    return out


DEFAULT_WORKLOADS = ("mlp", "cnn", "resnet")  # what benchmarks.run measures (plus resnet50 with --gpu)
UNTIL_SEPARATED = 4  # benchmarks.run's default cap of rounds per workload on a CPU (not --quick, not --gpu)


def collect(
    quick: bool = False,
    gpu: bool = False,
    engines=("pytorch", "jax"),
    reps: int | None = None,
    peers=(),
    precision: str = "fp32",
    workloads: tuple[str, ...] | None = None,
    until_separated: int | None = None,
    separate_budget: float = SEPARATE_BUDGET_S,
    steps: int | None = None,
) -> list[dict]:
    """Run the suite for benchmarks.run: MLP, CNN and ResNet-18 (and ResNet-50 on a GPU) with the contenders of
    `engines`; result rows.

    Args:
        quick: tiny sizes, 2 repetitions, one worker per contender for all workloads.
        gpu: the `GPU` sizes, on the first GPU.
        engines: the engines whose contenders run ("pytorch", "jax").
        reps: timed repetitions per worker and round (default 7; quick 2).
        peers: keys of `PEERS` whose contenders of `engines` run too (``("keras",)``; their package must be
            installed, see `benchmarks.peers.missing`).
        precision: "fp32", "bf16" (mixed, float32 weights) or "both".
        workloads: the workloads (default `DEFAULT_WORKLOADS`, plus resnet50 with `gpu`).
        until_separated: the most rounds a workload gets while a targeted ratio's confidence interval
            straddles its target (default `UNTIL_SEPARATED` on a CPU, 0 (one round) with `quick` or `gpu`).
        separate_budget: no round is added once the suite has run this many seconds.
        steps: steps per repetition (default: the workload's).
    """
    args = argparse.Namespace(quick=quick, gpu=gpu, steps=steps, rounds=1, separate_budget=separate_budget)
    args.reps = reps or (2 if quick else 7)
    args.precisions = precisions_of(precision)
    args.until_separated = (0 if quick or gpu else UNTIL_SEPARATED) if until_separated is None else until_separated
    chosen = (*DEFAULT_CONTENDERS, *(c for peer in peers for c in PEERS[peer]))
    args.contenders = [c for c in chosen if ENGINE.get(c, "jax") in engines]
    names = list(workloads or (*DEFAULT_WORKLOADS, *(("resnet50",) if gpu else ())))
    size = "quick" if quick else "gpu" if gpu else "cpu"
    for name in names:
        workload_config(name, size)  # a workload without this size: a clear error before any worker starts
    return rows(bench(names, args))


def _last_line(text: str, width: int = 60) -> str:
    """The exception line of a worker's traceback (else its last line), cut to `width` characters."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"[\w.]*(Error|Exception)\b", line)]
    line = (errors or lines or ["?"])[-1]
    return line if len(line) <= width else line[: width - 1] + "…"


def report(all_results: dict[str, dict[str, dict]], out_dir: Path) -> str:
    """Format the table and ratios, write ``train_step.csv`` into `out_dir`; return the text."""
    rows, csv_rows = [], []
    for wl, res in all_results.items():
        for c in (c for c in EVERY_CONTENDER if c in res):
            r = res[c]
            if "error" in r:
                rows.append([wl, c, "FAILED", _last_line(r["error"]), "", "", ""])
                csv_rows.append(
                    ["steps/s", wl, c, "", "", "", "", "", "", "", "", "", "FAILED: " + _last_line(r["error"])]
                )
                continue
            med, lo, hi = common.median_range(r["rates"])
            cpu = common.median_range(r["cpu_wall"])[0]
            threads = "-" if r["threads"] is None else r["threads"]
            rss = r["peak_rss_mb"]
            rows.append(
                [wl, c, f"{r['first_step']:.3f}", common.fmt_spread(med, lo, hi), f"{cpu:.2f}", threads, f"{rss:.0f}"]
            )
            note = "; ".join(x for x in (f"traces={r['traces']}" if "traces" in r else "", r.get("params", "")) if x)
            rates = ";".join(f"{x:.3f}" for x in r["rates"])
            csv_rows.append(["steps/s", wl, c, "", r["first_step"], med, lo, hi, cpu, r["threads"], rss, rates, note])
    lines = [common.format_table(HEADERS, rows), "", "ratios (per interleaved repetition: median (min–max)):"]
    level = f"{common.CI_LEVEL:.0%} CI"
    ratio_rows = []
    for wl, res in all_results.items():
        for a, b in (r for r in RATIOS if r[0] in res and r[1] in res):
            if "error" in res[a] or "error" in res[b]:
                ratio_rows.append([wl, f"{a} / {b}", "n/a (a contender failed)", "n/a", "", "", ""])
                continue
            pairs = paired(res, a, b)
            med, lo, hi = common.median_range(pairs)
            ci_low, ci_high, _ = common.median_ci(pairs)
            of_medians = common.median_range(res[a]["rates"])[0] / common.median_range(res[b]["rates"])[0]
            target = target_of(a, b)
            met = common.verdict(med, ci_low, ci_high, target)
            ci = f"{ci_low:.3f}–{ci_high:.3f} (n={len(pairs)})"
            ratio_rows.append(
                [wl, f"{a} / {b}", common.fmt_spread(med, lo, hi, 3), ci, f"{of_medians:.3f}", target, met]
            )
            note = f"ratio of medians={of_medians:.4f}; {level} {ci_low:.4f}–{ci_high:.4f}; target {target} {met}"
            csv_rows.append(["ratio", wl, a, b, "", med, lo, hi, "", "", "", ";".join(f"{x:.4f}" for x in pairs), note])
    lines.append(common.format_table(("workload", "ratio", "paired", level, "of medians", "target", "met"), ratio_rows))
    for wl, res in all_results.items():
        traces = res.get("nebulae-jax", {}).get("traces")
        if traces is not None and traces != 1:
            lines.append(f"WARNING: nebulae-jax traced its {wl} step {traces} times (expected 1)")
    path = common.write_csv(out_dir / "train_step.csv", CSV_HEADERS, csv_rows)
    lines.append(f"CSV: {path}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Command line entry point (also the worker entry point with ``--worker``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny models and few steps (< 60 s in all)")
    p.add_argument("--gpu", action="store_true", help="bigger sizes (ResNet at 224x224), on the first GPU")
    p.add_argument("--workloads", default="mlp,cnn", help=f"comma-separated subset of: {','.join(WORKLOADS)}")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions per worker (default 7; quick 2)")
    p.add_argument("--rounds", type=int, default=1, help="fresh worker processes per contender, results pooled")
    p.add_argument(
        "--until-separated",
        type=int,
        default=0,
        metavar="N",
        help="add rounds while a targeted ratio's 95%% CI straddles its target, up to N rounds (default 0: off)",
    )
    p.add_argument(
        "--separate-budget",
        type=float,
        default=SEPARATE_BUDGET_S,
        metavar="S",
        help=f"--until-separated adds no round once the suite has run S seconds (default {SEPARATE_BUDGET_S:.0f})",
    )
    p.add_argument("--precision", choices=("fp32", "bf16", "both"), default="fp32", help="fp32, mixed bf16 or both")
    p.add_argument("--steps", type=int, default=None, help="steps per repetition (default 30 MLP, 5 CNN, 3 ResNet)")
    p.add_argument(
        "--contenders", default=",".join(DEFAULT_CONTENDERS), help="comma-separated subset of the contenders"
    )
    p.add_argument("--peers", choices=sorted(PEERS), action="append", default=[], help="add these peers' contenders")
    p.add_argument("--out", default="bench_out", help="folder for train_step.csv")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--contender", help=argparse.SUPPRESS)
    p.add_argument("--size", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker_main(args.contender, args.size)
        return 0
    args.reps = args.reps or (2 if args.quick else 7)
    args.precisions = precisions_of(args.precision)
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    args.contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    args.contenders += [c for peer in args.peers for c in PEERS[peer] if c not in args.contenders]
    for given, valid in ((names, WORKLOADS), (args.contenders, EVERY_CONTENDER)):
        unknown = sorted(set(given) - set(valid))
        if unknown or not given:
            p.error(f"unknown or no choice(s) {unknown}; choose from {sorted(valid)}")
    size = "quick" if args.quick else "gpu" if args.gpu else "cpu"
    for name in names:
        try:
            workload_config(name, size)
        except ValueError as e:
            p.error(str(e))
    for peer in peers.missing([peer for peer, names in PEERS.items() if set(names) & set(args.contenders)]):
        print(peers.MISSING.format(peer=peer, package=peers.PACKAGES[peer]), file=sys.stderr)
        args.contenders = [c for c in args.contenders if c not in PEERS[peer]]
    load_before = os.getloadavg()[0]
    results = bench(names, args)
    print(report(results, Path(args.out)))
    print(f"1-min load average: {load_before:.2f} before, {os.getloadavg()[0]:.2f} after ({os.cpu_count()} CPUs)")
    failed = [f"{wl}/{c}" for wl, res in results.items() for c, r in res.items() if "error" in r]
    if failed:
        print(f"FAILED contenders (details on stderr above): {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
