"""kit.destine seeds the engine whether it is called before the engine binds or after, in fresh processes.

`child` runs in a fresh interpreter (`run_python`, NEB_CORE set): it seeds as told, builds an MLP with
Dropout, runs three train steps and draws two masks from a standalone Dropout, and prints them as JSON.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import run_python


def _workload(dock) -> dict:
    from tests.models.steps import mlp, train_dev

    net = mlp(dock, bn=False, p_drop=0.5)
    train, _ = train_dev(dock, net, "Adam", lr=1e-2)
    x = np.random.default_rng(0).normal(size=(8, 12)).astype(np.float32)
    z = np.arange(8) % 5
    losses = [float(dock.shell(train(dock.coat(x), dock.coat(z)))) for _ in range(3)]
    drop = dock.Dropout(0.5)
    drop.gear(True)  # train mode: masks are drawn
    ones = dock.coat(np.ones((4, 16), np.float32))
    masks = [dock.shell(drop(ones)).astype(bool).tolist() for _ in range(2)]
    return {"losses": losses, "masks": masks}


def child(seeds: list[int], bind_first: bool = False, again: bool = False) -> None:
    """destine(s) for each of `seeds` (before binding unless `bind_first`), run the workload; `again`: reseed, rerun."""
    import nebulae
    from nebulae import kit

    if bind_first:
        from nebulae.astro import dock

        dock.Craft  # noqa: B018 (binds)
        assert nebulae.Law.BOUND is not None
    for s in seeds:
        kit.destine(s)
    assert bind_first or nebulae.Law.BOUND is None  # destine itself never binds
    from nebulae.astro import dock

    runs = [_workload(dock)]
    if again:
        kit.destine(seeds[-1])
        runs.append(_workload(dock))
    print("RESULT " + json.dumps(runs))


def _run(engine: str, *args) -> list[dict]:
    res = run_python(f"from tests.test_seams_seed import child; child(*{args!r})", env={"NEB_CORE": engine})
    assert res.returncode == 0, res.stderr[-4000:]
    line = [t for t in res.stdout.splitlines() if t.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


@pytest.fixture(scope="module")
def seeded(engine):
    """The reference: destine(0) before binding, in a fresh process."""
    return _run(engine, [0])[0]


def test_destine_before_binding_reproduces_dropout_across_processes(engine, seeded):
    twin = _run(engine, [0])[0]
    assert twin["losses"] == seeded["losses"]  # bitwise: same weights, same masks
    assert twin["masks"] == seeded["masks"]
    assert seeded["masks"][0] != seeded["masks"][1]  # the stream advances between calls
    other = _run(engine, [1])[0]
    assert other["losses"] != seeded["losses"]
    assert other["masks"] != seeded["masks"]


def test_destine_after_binding_and_twice_gives_the_same_run(engine, seeded):
    first, second = _run(engine, [7, 0], True, True)  # bound first, then destine(7), destine(0); destine(0) again
    assert first == seeded  # the same streams as destine(0) before binding: the last seed wins
    assert second == seeded  # destine(0) again restarts every stream
