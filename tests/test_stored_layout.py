"""Conv kernels are held spatial-first on JAX (XLA runs faster) yet every boundary shows torch's layout.

The parity suites (tests/test_dock_conv.py: outputs and Prober gradients; tests/test_steps_parity.py:
trajectories) run over the stored layout; this file pins the layout itself and the boundaries those
suites do not reach: summaries, EMA shadows, fixed kernels, the weight-import shape check, anchors with
optimizer slots, and anchors written before the change (format 1).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from nebulae.astro import init
from nebulae.cockpit.timemachine import TimeMachine
from tests.models.steps import cnn, train_dev

pytestmark = pytest.mark.once

CONVS = [((2, 4, (5,), 1), (5, 2, 4)), ((4, 6, (3, 5), 2), (3, 5, 2, 6)), ((6, 3, (2, 3, 3), 3), (2, 3, 3, 2, 3))]


@pytest.mark.parametrize("args, stored", CONVS, ids=["1d", "2d-groups", "3d-groups"])
def test_jax_stores_kernels_spatial_first_and_shows_them_as_torch(both, args, stored):
    tdock, jdock = both
    cin, cout, kernel, group = args
    init.seed(1)
    t = tdock.Conv(cin, cout, kernel, group=group)
    init.seed(1)
    j = jdock.Conv(cin, cout, kernel, group=group)
    assert tuple(j.weight.get_value().shape) == stored  # (*spatial, in / groups, out): HWIO
    neutral = (cout, cin // group, *kernel)
    assert tuple(t.weight.shape) == neutral
    wt, wj = t.export_weights(), j.export_weights()
    assert wj["weight"].shape == neutral
    np.testing.assert_array_equal(wj["weight"], wt["weight"])  # the same initial values, in torch's layout
    assert j.weight_shape(j.named_weights()["weight"]) == neutral
    with pytest.raises(KeyError, match=re.escape(f"mismatch at weight: craft has {neutral}, given {stored}")):
        j.import_weights({"weight": np.zeros(stored, np.float32), "bias": wj["bias"]})  # the stored shape is refused
    rng = np.random.default_rng(0)
    changed = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in wt.items()}
    t.import_weights(changed)
    j.import_weights(changed)
    np.testing.assert_array_equal(j.export_weights()["weight"], changed["weight"])
    x = rng.normal(size=(2, cin, *(k + 3 for k in kernel))).astype(np.float32)
    np.testing.assert_allclose(jdock.shell(j(jdock.coat(x))), tdock.shell(t(tdock.coat(x))), rtol=1e-5, atol=1e-5)


def test_summaries_ema_shadows_and_fixed_kernels_are_neutral_on_both(both):
    from nebulae.backends.jax import summary as jsummary
    from nebulae.backends.torch import summary as tsummary

    results = []
    for dock, summary in zip(both, (tsummary, jsummary)):
        init.seed(2)
        net = cnn(dock)
        train, _ = train_dev(dock, net, "Adam", lr=1e-2, ema=0.5)
        x = np.random.default_rng(3).normal(size=(4, 3, 8, 8)).astype(np.float32)
        train(dock.coat(x), dock.coat(np.arange(4) % 5))
        shapes = {path: shape for path, shape, *_ in summary.parameters(net)}
        layers = summary.layer_calls(net, (dock.coat(x),), {})
        fixed_kernel = np.random.default_rng(4).normal(size=(2, 3, 3, 3)).astype(np.float32)
        fixed = dock.Conv(3, 2, (3, 3), w_init=fixed_kernel, b_init=dock.Void())
        out = dock.shell(fixed(dock.coat(x)))
        results.append((shapes, dock.shell(train.ema.shadow()), [r.get("weight") for r in layers], out))
    (st, et, lt, ot), (sj, ej, lj, oj) = results
    assert len(st) == len(sj) and sorted(st.values()) == sorted(sj.values())
    assert (4, 3, 3, 3) in sj.values()
    assert sorted(np.shape(v) for v in ej.values()) == sorted(np.shape(v) for v in et.values())
    assert lj == lt and (4, 3, 3, 3) in lj
    np.testing.assert_allclose(oj, ot, rtol=1e-5, atol=1e-5)


def test_anchors_hold_the_stored_layout_and_resume_exactly(both, tmp_path):
    dock = both[1]
    train, x, z = _cnn_step(dock, seed=5)
    train(x, z)
    tm = TimeMachine(tmp_path, tmp_path)
    tm.drop(train)
    tm.wait()
    twin, _, _ = _cnn_step(dock, seed=6)
    _load(tm, twin)
    assert [float(dock.shell(train(x, z))) for _ in range(3)] == [float(dock.shell(twin(x, z))) for _ in range(3)]


def test_a_format_1_anchor_with_neutral_kernels_loads_and_resumes(both, tmp_path, monkeypatch):
    dock = both[1]
    from nebulae.backends.jax import layout
    from nebulae.cockpit import timemachine

    with monkeypatch.context() as old:  # what the release before this layout wrote: every array neutral
        old.setattr(layout, "stored_axes_for", lambda layout, ndim: None)
        old.setattr(timemachine, "FORMAT", 1)
        train, x, z = _cnn_step(dock, seed=7)
        assert train.net.conv1.weight.get_value().shape == (4, 3, 3, 3)
        train(x, z)
        tm = TimeMachine(tmp_path, tmp_path)
        tm.drop(train)
        tm.wait()
        before = [float(dock.shell(train(x, z))) for _ in range(3)]
    twin, _, _ = _cnn_step(dock, seed=8)
    assert twin.net.conv1.weight.get_value().shape == (3, 3, 3, 4)
    _load(tm, twin)
    after = [float(dock.shell(twin(x, z))) for _ in range(3)]
    np.testing.assert_allclose(after, before, rtol=1e-6)


def _cnn_step(dock, seed):
    init.seed(seed)
    train, _ = train_dev(dock, cnn(dock), "Adam", lr=1e-2)
    rng = np.random.default_rng(0)
    x = dock.coat(rng.normal(size=(4, 3, 8, 8)).astype(np.float32))
    return train, x, dock.coat(np.arange(4) % 5)


def _load(tm, craft):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        landing = tm.to(craft)
    assert not landing.report.mismatched and not landing.report.missing
