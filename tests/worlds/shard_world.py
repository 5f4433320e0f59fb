"""Training runs for the sharded-state tests (tests/test_sharding_jax.py) and benchmarks/sharding_memory.py (JAX).

`launch(mv, model, steps, out, ...)` is a Multiverse universe: it builds `model` ('mlp': the Multiverse tests'
MLP with BN; 'resnet18': the hangar's ResNet-18 on 3x32x32), syncs it (replicated, or split when the
Multiverse has shard='params'), then trains it with Adam as the brochure does (`mv.sync(net)` first, the
step craft and its optimizer after) for `steps` steps on seeded global batches, and fills the dict `out`.
`resume(mv, model, anchor, start, steps, out)` builds the same craft (under `mv`, or on one device when mv is
None), restores a TimeMachine anchor into it and trains on from step `start`.
"""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx

from nebulae.astro import dock, hangar, init
from nebulae.backends.jax import sharding
from nebulae.cockpit import TimeMachine
from tests.models.steps import mlp

SHAPES = {"mlp": ((8, 6), 3), "resnet18": ((8, 3, 32, 32), 10)}  # (global batch shape, classes)
# ResNet-18 on random 3x32x32 data: a small step (and Adam's eps raised) keeps training out of the chaotic regime
# where float32 summation order alone (1 device vs 2) makes the runs part after a few steps
ADAM = {"mlp": {"lr": 1e-3}, "resnet18": {"lr": 1e-4, "eps": 1e-3}}


def build_net(model: str):
    """The model, seeded."""
    init.seed(11)
    if model == "mlp":
        return mlp(dock, in_chs=6, hidden=16, nclass=3, bn=True)
    if model == "resnet18":
        return hangar.ResNet(18, nclass=10, in_shape=(3, 32, 32))
    raise ValueError(f"shard_world: unknown model {model!r}")


class Train(dock.Craft):
    """The brochure's step craft: forward, softmax cross-entropy, Adam."""

    def __init__(self, net, model: str, scope: str = "TRAIN"):
        super().__init__(scope)
        self.net = net
        self.loss = dock.SftmXE()
        self.optz = dock.Adam(net, **ADAM[model])

    def run(self, x, z):
        with dock.Rudder() as rd:
            self.net.gear(rd)
            loss = self.loss(self.net(x), z)
            self.optz(loss)
        return loss


def batch(model: str, step: int) -> tuple[np.ndarray, np.ndarray]:
    """The global batch of `step` (the same whatever the number of worlds)."""
    shape, nclass = SHAPES[model]
    rng = np.random.default_rng(1000 + step)
    return rng.standard_normal(shape).astype(np.float32), rng.integers(0, nclass, shape[0])


def train_steps(train: Train, model: str, start: int, steps: int) -> list[float]:
    """Train from step `start` for `steps` steps; the losses."""
    losses = []
    for s in range(start, start + steps):
        x, z = batch(model, s)
        losses.append(float(dock.shell(train(dock.coat(x), dock.coat(z)))))
    return losses


def adam_slots(train: Train, key: str) -> dict:
    """Adam's first and second moments ('mu', 'nu') of the parameter `key` (e.g. 'fc1/weight'), as Variables."""
    optz = train.optz
    state = jax.tree.unflatten(optz._slot_def, list(optz.slots))
    j = optz._paths.index(key)
    found = {}
    for path, var in jax.tree_util.tree_flatten_with_path(state, is_leaf=lambda v: isinstance(v, nnx.Variable))[0]:
        names = [getattr(k, "name", None) for k in path]
        moment = next((n for n in names if n in ("mu", "nu")), None)
        if moment is not None and isinstance(path[-1], jax.tree_util.SequenceKey) and path[-1].idx == j:
            found[moment] = var
    return found


def layout(value) -> dict:
    """Where an array lies: its PartitionSpec (as a tuple), and how many elements each device holds."""
    spec = getattr(value.sharding, "spec", ())
    return {
        "shape": tuple(value.shape),
        "float": bool(jax.numpy.issubdtype(value.dtype, jax.numpy.floating)),
        "spec": tuple(spec),
        "elements": sorted(int(np.prod(s.data.shape)) for s in value.addressable_shards),
    }


def launch(mv, model: str, steps: int, out: dict, anchor_dir: str | None = None, anchor_at: int = 0) -> None:
    """Train `model` for `steps` steps under `mv`; with `anchor_dir`, drop an anchor after `anchor_at` steps."""
    mv.init()
    net = mv.sync(build_net(model))
    train = Train(net, model)
    losses = train_steps(train, model, 0, anchor_at if anchor_dir else steps)
    if anchor_dir:
        tm = TimeMachine(ckpt_path=anchor_dir, save_path=anchor_dir, asynchronous=False)
        out["anchor"] = tm.drop(train)
        out["anchor_weights"] = net.export_weights()
        losses += train_steps(train, model, anchor_at, steps - anchor_at)
    out["losses"] = losses
    out["weights"] = net.export_weights()
    out["traces"] = train.traces
    out["state"] = {
        "/".join(map(str, p)): layout(v.get_raw_value())
        for p, v in nnx.iter_graph(train)
        if isinstance(v, nnx.Variable) and isinstance(v.get_raw_value(), jax.Array)
    }
    probe = "fc1/weight" if model == "mlp" else "fc/weight"
    out["probe"] = {"param": layout(dict(net.named_weights())[probe].get_raw_value())}
    out["probe"].update({k: layout(v.get_raw_value()) for k, v in adam_slots(train, probe).items()})
    out["bytes"] = sharding.world_bytes(train, jax.devices()[0])


def resume(mv, model: str, anchor: str, start: int, steps: int, out: dict) -> None:
    """Restore `anchor` into a freshly built craft (under `mv`, or on one device when None), train on `steps`."""
    if mv is not None:
        mv.init()
    net = build_net(model)
    if mv is not None:
        net = mv.sync(net)
    train = Train(net, model)
    TimeMachine(ckpt_path=anchor, save_path=anchor + "-resumed").to(train)
    out["loaded"] = net.export_weights()
    out["losses"] = train_steps(train, model, start, steps)
    out["weights"] = net.export_weights()
    out["state"] = {k: layout(v.get_raw_value()) for k, v in net.named_weights().items()}
