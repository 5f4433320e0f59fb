"""A data-parallel training script for the Multiverse tests (run as a file: worlds are spawned processes).

usage: python mlp_world.py OUT NWORLD STEPS BATCH [train|bn|fail|die]

Every world trains the same MLP for STEPS steps; step s uses rows [s*BATCH, (s+1)*BATCH) of one
seeded data set, split evenly between the worlds, so any NWORLD sees the same global batches.
Rank 0 writes the final weights, the reduced losses and reduce() probes to OUT (.npz): each world's
chunk of arange(BATCH) reduced (mean and sum), and each process's rank + 1 reduced. In mode 'bn' the
MLP has a BN layer (synchronised over the worlds); in 'fail' rank 1 raises, in 'die' it is killed.
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np

from nebulae.astro import dock, init
from nebulae.cockpit import CPU, Engine, Multiverse
from tests.models.steps import mlp, train_dev


def launch(mv, out: str, steps: int, batch: int, mode: str) -> None:
    mv.init()
    Engine(device=CPU, ngpus=mv.nworld)
    if mode == "fail" and mv.rank == 1:
        raise ValueError("boom from rank 1")
    if mode == "die" and mv.rank == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    init.seed(7)
    net = mlp(dock, in_chs=6, hidden=16, nclass=3, bn=mode == "bn")
    net = mv.sync(net)
    train, _ = train_dev(dock, net, "Momentum", lr=0.1, mmnt=0.9)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((steps * batch, 6)).astype(np.float32)
    z = rng.integers(0, 3, steps * batch)
    share = batch // mv.nworld
    mine = share * len(mv.worlds)  # torch: one share per process; JAX: one process feeds every world
    losses = []
    for s in range(steps):
        lo = s * batch + mv.worlds[0] * share
        loss = train(dock.coat(x[lo : lo + mine]), dock.coat(z[lo : lo + mine]))
        losses.append(dock.shell(mv.reduce(loss)))
    chunk = dock.coat(np.arange(batch, dtype=np.float32)[mv.worlds[0] * share : mv.worlds[0] * share + mine])
    chunk_mean, chunk_sum = dock.shell(mv.reduce(chunk)), dock.shell(mv.reduce(chunk, aggregate=True))
    rank_mean = dock.shell(mv.reduce(np.float32(mv.rank + 1)))  # a host value: one per process
    rank_sum = dock.shell(mv.reduce(np.float32(mv.rank + 1), aggregate=True))
    if mv.rank == 0:
        weights = net.export_weights()
        np.savez(
            out,
            losses=np.array(losses),
            chunk_mean=chunk_mean,
            chunk_sum=chunk_sum,
            rank_mean=rank_mean,
            rank_sum=rank_sum,
            **weights,
        )


if __name__ == "__main__":
    out, nworld, steps, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    mode = sys.argv[5] if len(sys.argv) > 5 else "train"
    Multiverse(launch, nworld, sync_bn=mode == "bn")(out, steps, batch, mode)
