"""Cross-engine parity harness: build a craft with the same seed on both engines, run, compare.

Weights are identical by construction: initialisers draw from one NumPy stream (see
nebulae.astro.init), so a craft's constructor must create its weights in the same order on both
engines. `outputs` returns NumPy copies, one per engine, for the caller to compare (and to
check against torch's own reference where one exists).
"""

from __future__ import annotations

import numpy as np

from nebulae.astro import init
from nebulae.backends.jax import dock as jdock
from nebulae.backends.torch import dock as tdock

DOCKS = (tdock, jdock)


def build(dock, factory, seed: int = 0):
    """factory(dock) after reseeding the initialiser stream."""
    init.seed(seed)
    return factory(dock)


def outputs(factory, *inputs, train: bool = False, seed: int = 0, call=None, **kwargs):
    """[(torch output, jax output)] for `factory(dock)(*inputs)`; NumPy inputs are coated.

    `train` runs under Rudder (train-mode layers) instead of Nozzle; `call(craft, *args)` replaces
    the plain call (for methods or extra arguments). Returns (out_torch, out_jax, craft_torch, craft_jax).
    """
    results, crafts = [], []
    for dock in DOCKS:
        craft = build(dock, factory, seed)
        args = [dock.coat(a) if isinstance(a, np.ndarray) else a for a in inputs]
        with dock.Rudder() if train else dock.Nozzle():
            out = craft(*args, **kwargs) if call is None else call(craft, *args, **kwargs)
        results.append(dock.shell(out))
        crafts.append(craft)
    return results[0], results[1], crafts[0], crafts[1]


def assert_same(a, b, rtol: float = 1e-5, atol: float = 1e-5, what: str = "") -> None:
    """Compare (nested tuples/lists/dicts of) arrays and scalars from the two engines."""
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), f"{what}: keys {sorted(a)} vs {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], rtol, atol, f"{what}[{k}]")
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), f"{what}: {len(a)} vs {len(b)} outputs"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, rtol, atol, f"{what}[{i}]")
    else:
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=rtol, atol=atol, err_msg=what)
        assert np.shape(a) == np.shape(b), f"{what}: shape {np.shape(a)} vs {np.shape(b)}"
