"""JAX steps donate their state off CPU only (XLA:CPU copies donated buffers, so donation there only costs);
NEB_JAX_DONATE=1/0 forces it on/off. The losses are the same either way."""

from __future__ import annotations

import numpy as np
import pytest

from nebulae.astro import init
from tests.models.steps import mlp, train_dev

pytestmark = pytest.mark.once


def _run(jdock, monkeypatch, donate: str | None):
    if donate is None:
        monkeypatch.delenv("NEB_JAX_DONATE", raising=False)
    else:
        monkeypatch.setenv("NEB_JAX_DONATE", donate)
    init.seed(0)
    net = mlp(jdock, bn=True)
    train, _ = train_dev(jdock, net, lr=0.01)
    rng = np.random.default_rng(0)
    x, z = jdock.coat(rng.standard_normal((8, 12), dtype=np.float32)), jdock.coat(rng.integers(0, 5, 8))
    losses = [float(jdock.shell(train(x, z)))]
    before = net.named_weights()["fc1/weight"].get_value()  # an array taken out of a Variable before a step
    losses += [float(jdock.shell(train(x, z))) for _ in range(3)]
    return losses, before.is_deleted()


def test_cpu_state_is_not_donated_unless_forced_and_the_losses_do_not_change(both, monkeypatch):
    jdock = both[1]
    default, kept = _run(jdock, monkeypatch, None)
    forced, deleted = _run(jdock, monkeypatch, "1")
    off, kept_off = _run(jdock, monkeypatch, "0")
    assert not kept and not kept_off, "a CPU step donated its state"
    assert deleted, "NEB_JAX_DONATE=1 did not donate the state"
    np.testing.assert_array_equal(default, forced)
    np.testing.assert_array_equal(default, off)
    assert default[-1] < default[0]
