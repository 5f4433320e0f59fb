"""A training script for the sharded-parameter tests on torch (run as a file: worlds are spawned processes).

usage: python shard_torch_world.py OUT NWORLD MODEL SHARD

MODEL 'mlp': the brochure-style MLP step (Momentum, gradient clipping), its Train craft (and so its optimizer) built
BEFORE `mv.sync` when SHARD is 'params' (the craft is sharded in place); 'cnn': a CNN with BN synchronised over the
worlds (sync_bn) and Adam, built after `mv.sync`; 'two': two Dense layers, each with its own optimizer and its own loss
in one step (each must apply only its own loss's gradient). SHARD: 'none' (replicated, DDP) or 'params'. Every world
trains STEPS steps on its share of one seeded global batch of BATCH rows per step. Rank 0 writes the reduced losses and
the exported weights (every rank exports: a sharded craft gathers them) to OUT (.npz); every rank writes
OUT.rank<r>.json: per parameter its local and global element counts and type, the bytes of its parameters and of its
optimizer state held on this rank, what dropping a '.pth' anchor gave ('saved' or the error), and whether importing
twice the exported weights then exporting again gives them back.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from nebulae.astro import dock, init
from nebulae.cockpit import CPU, Engine, Multiverse, TimeMachine
from tests.models.steps import cnn, mlp, train_dev

STEPS, BATCH = 10, 8


def _held(t) -> tuple[int, int]:
    """(elements held on this rank, elements of the whole tensor)."""
    local = t.to_local() if hasattr(t, "to_local") else t
    return local.numel() * local.element_size(), t.numel() * t.element_size()


def _figures(net, optz) -> dict:
    params = {}
    for name, p in net.named_parameters():
        local = p.to_local() if hasattr(p, "to_local") else p
        params[name] = {"local": local.numel(), "global": p.numel(), "type": type(p.data).__name__}
    state = [_held(t) for s in optz._optim.state.values() for t in s.values() if hasattr(t, "numel")]
    weights = [_held(p) for p in net.parameters()]
    return {
        "params": params,
        "param_bytes": sum(h for h, _ in weights),
        "state_bytes": sum(h for h, _ in state),
        "state_sharded": [h < w for h, w in state if w > 4],
        "largest_unsplit": max([h for h, w in state + weights if h == w] or [0]),
    }


def _anchor(train, work: str, name: str) -> str:
    """'saved', or the error of dropping a '.pth' anchor of `train`."""
    tm = TimeMachine(ckpt_path=work, save_path=os.path.join(work, name), asynchronous=False)
    try:
        tm.drop(train)
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return "saved"


def _two(mv, rng):
    class Two(dock.Craft):
        def __init__(self):
            super().__init__("TWO")
            self.a = dock.Dense(12, 16)
            self.b = dock.Dense(16, 5)

        def run(self, x):
            return self.b(self.a(x))

    class Train(dock.Craft):
        def __init__(self, net):
            super().__init__("TRAIN")
            self.net = net
            self.optz = dock.Momentum(net.a, lr=0.1, mmnt=0.9)
            self.optz_b = dock.Adam(net.b, lr=0.01)

        def run(self, x, z):
            y = self.net(x)
            self.optz((y**2).mean())
            self.optz_b((y - 1).abs().mean())
            return (y**2).mean() + (y - 1).abs().mean()

    net = Two()
    train = Train(net)
    return mv.sync(net), train, rng.standard_normal((STEPS * BATCH, 12)).astype(np.float32)


def launch(mv, out: str, model: str, shard: str) -> None:
    mv.init()
    Engine(device=CPU, ngpus=mv.nworld)
    init.seed(7)
    rng = np.random.default_rng(3)
    z = rng.integers(0, 5, STEPS * BATCH)
    if model == "mlp":
        net = mlp(dock, in_chs=12, hidden=64, nclass=5, bn=False)
        x = rng.standard_normal((STEPS * BATCH, 12)).astype(np.float32)
        if shard == "params":  # the brochure's order: the optimizer holds the parameters before they are sharded
            train, _ = train_dev(dock, net, "Momentum", lr=0.1, mmnt=0.9, grad_limit=0.5)
            net = mv.sync(net)
        else:
            net = mv.sync(net)
            train, _ = train_dev(dock, net, "Momentum", lr=0.1, mmnt=0.9, grad_limit=0.5)
    elif model == "two":
        net, train, x = _two(mv, rng)
    else:
        net = mv.sync(cnn(dock, chs=4, nclass=6))
        x = rng.standard_normal((STEPS * BATCH, 3, 8, 8)).astype(np.float32)
        train, _ = train_dev(dock, net, "Adam", lr=0.01)
    share = BATCH // mv.nworld
    losses = []
    for s in range(STEPS):
        lo = s * BATCH + mv.rank * share
        loss = train(dock.coat(x[lo : lo + share]), dock.coat(z[lo : lo + share]))
        losses.append(dock.shell(mv.reduce(loss)))
    figures = _figures(net, train.optz)
    figures["anchor"] = _anchor(train, os.path.dirname(out) or ".", f"{model}-{shard}-{mv.nworld}")
    weights = net.export_weights()
    net.import_weights({k: 2 * v for k, v in weights.items()})  # every rank: its own part of the whole arrays
    again = net.export_weights()
    figures["imported"] = all(np.allclose(again[k], 2 * v) for k, v in weights.items())
    with open(f"{out}.rank{mv.rank}.json", "w") as f:
        json.dump(figures, f)
    if mv.rank == 0:
        np.savez(out, losses=np.array(losses), **weights)


if __name__ == "__main__":
    out, nworld, model, shard = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    Multiverse(launch, nworld, sync_bn=model == "cnn", shard=None if shard == "none" else shard)(out, model, shard)
