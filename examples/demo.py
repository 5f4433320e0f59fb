"""The Nebulae demo (until the full demo on real images lands): one model and one training step, written
once, trained on the engine chosen by NEB_CORE.

Run: `python -m nebulae demo --core jax` (or pytorch). It builds an MLP with BatchNorm and Dropout
from a fixed seed, trains it with Adam (cosine schedule, warm-up) and an EMA on a synthetic
10-class problem, evaluates the EMA weights under Nozzle, and exports path-keyed weights.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import nebulae
from nebulae.astro import dock, init


class MLP(dock.Craft):
    """A perceptron written only with dock crafts."""

    def __init__(self, in_chs: int, hidden: int, nclass: int, scope: str = "MLP"):
        super().__init__(scope)
        self.fc1 = dock.Dense(in_chs, hidden, b_init=dock.Void())
        self.bn = dock.BN(hidden, 1)
        self.act = dock.Relu()
        self.drop = dock.Dropout(0.1)
        self.fc2 = dock.Dense(hidden, nclass)

    def run(self, x):
        return self.fc2(self.drop(self.act(self.bn(self.fc1(x)))))


class Train(dock.Craft):
    """One training step in the seed's style."""

    def __init__(self, net, steps: int, scope: str = "TRAIN"):
        super().__init__(scope)
        self.net, self.loss = net, dock.SftmXE()
        self.optz = dock.Adam(net, lr=3e-3, wd=1e-4, lr_decay=dock.CosLR(steps), warmup=steps // 10)
        self.ema = dock.EMA(net, decay=0.9)

    def run(self, x, z):
        with dock.Rudder() as rd:
            self.net.gear(rd)
            loss = self.loss(self.net(x), z)
            self.optz(loss)
            self.ema.update()
        return loss


class Dev(dock.Craft):
    """Evaluation: accuracy of the net's predictions."""

    def __init__(self, net, scope: str = "DEV"):
        super().__init__(scope)
        self.net, self.acc = net, dock.AccCls()

    def run(self, x, z):
        return self.acc(self.net(x), z)


def blobs(n: int, rng: np.random.Generator, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """n points around 10 fixed centres in 32-D, with their class labels."""
    z = rng.integers(0, len(centres), n)
    return (centres[z] + rng.normal(size=(n, centres.shape[1]))).astype(np.float32), z


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    init.seed(0)
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=0.8, size=(10, 32))
    net = MLP(32, 128, 10)
    train, dev = Train(net, args.steps), Dev(net)
    start = time.perf_counter()
    for step in range(args.steps):
        x, z = blobs(args.batch, rng, centres)
        loss = train(dock.coat(x), dock.coat(z))
        if step % 50 == 0 or step == args.steps - 1:
            print(f"[{nebulae.Law.BOUND}] step {step:4d}  loss {dock.shell(loss):.4f}  lr {train.optz.lr:.2e}")
    took = time.perf_counter() - start
    x, z = blobs(2000, rng, centres)
    with dock.Nozzle():
        raw = dock.shell(dev(dock.coat(x), dock.coat(z)))
        train.ema.on()
        smooth = dock.shell(dev(dock.coat(x), dock.coat(z)))
        train.ema.off()
    print(
        f"[{nebulae.Law.BOUND}] {args.steps} steps in {took:.1f} s (compile {train.compile_seconds:.1f} s); "
        f"held-out accuracy {raw:.3f}, with EMA weights {smooth:.3f}; exported {len(net.export_weights())} arrays"
    )
    if smooth < 0.8:
        raise SystemExit("demo: the model did not learn")


if __name__ == "__main__":
    main()
