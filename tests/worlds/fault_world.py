"""A tiny data-parallel loop for the fault tests of worlds (tests/test_faults_worlds.py).

usage: python fault_world.py DIR NWORLD STEPS [TIMEOUT]

Every world writes its pid to DIR/pid-RANK, then trains a tiny MLP for STEPS steps, each followed by a
collective (`mv.reduce` of a host value). Faults, deterministic per rank and step:
- NEB_FAULT='world.rank1-step@3=kill' (or hang, raise): faults.point reached before every step;
- WORLD_EXIT='RANK:STEP:CODE': that rank leaves with os._exit(CODE) before that step.
STEP_SLEEP (seconds, default 0.02) paces the loop so long runs stay light on the CPU.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from nebulae import faults
from nebulae.astro import dock, init
from nebulae.cockpit import CPU, Engine, Multiverse
from tests.models.steps import mlp, train_dev


def launch(mv, work: str, steps: int) -> None:
    mv.init()
    Engine(device=CPU, ngpus=mv.nworld)
    rank = mv.rank
    with open(os.path.join(work, f"pid-{rank}"), "w") as f:
        f.write(str(os.getpid()))
    exit_rank, exit_step, exit_code = (int(v) for v in os.environ.get("WORLD_EXIT", "-1:-1:0").split(":"))
    pause = float(os.environ.get("STEP_SLEEP", "0.02"))
    init.seed(7)
    train, _ = train_dev(dock, mv.sync(mlp(dock, in_chs=4, hidden=4, nclass=2, bn=False)), "Momentum", lr=0.1, mmnt=0.9)
    rng = np.random.default_rng(rank)
    share = 2 * len(mv.worlds)
    for step in range(1, steps + 1):
        faults.point(f"world.rank{rank}-step")
        if (rank, step) == (exit_rank, exit_step):
            os._exit(exit_code)
        loss = train(dock.coat(rng.standard_normal((share, 4)).astype(np.float32)), dock.coat(np.zeros(share, int)))
        mv.reduce(np.float32(dock.shell(loss)))
        time.sleep(pause)


if __name__ == "__main__":
    work, nworld, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 600.0
    Multiverse(launch, nworld, timeout=timeout)(work, steps)
