"""The Nebulae demo (foundation slice): one MLP class, written once, run on the engine chosen by NEB_CORE.

Run: `python -m nebulae demo --core jax` (or pytorch). It builds the model from a fixed seed,
runs a forward pass, and checks the result against NumPy with the exported weights.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import nebulae
from nebulae.astro import dock, init


class MLP(dock.Craft):
    """A two-layer perceptron written only with dock crafts."""

    def __init__(self, in_chs: int, hidden: int, nclass: int, scope: str = "MLP"):
        super().__init__(scope)
        self.fc1 = dock.Dense(in_chs, hidden)
        self.act = dock.Relu()
        self.fc2 = dock.Dense(hidden, nclass)

    def run(self, x):
        return self.fc2(self.act(self.fc1(x)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    init.seed(0)
    net = MLP(64, 128, 10)
    x = np.random.default_rng(0).normal(size=(args.batch, 64)).astype(np.float32)
    start = time.perf_counter()
    y = dock.shell(net(dock.coat(x)))
    took = time.perf_counter() - start
    w = net.export_weights()
    ref = np.maximum(x @ w["fc1/weight"].T + w["fc1/bias"], 0) @ w["fc2/weight"].T + w["fc2/bias"]
    err = float(np.abs(y - ref).max())
    print(
        f"[{nebulae.Law.BOUND}] MLP 64-128-10 forward on a batch of {args.batch}: output {y.shape}, "
        f"max |engine - NumPy| = {err:.2e}, first call {took * 1e3:.1f} ms"
    )
    if err > 1e-4:
        raise SystemExit("demo: outputs disagree with the NumPy reference")


if __name__ == "__main__":
    main()
