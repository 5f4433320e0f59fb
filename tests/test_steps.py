"""Step behaviour on the bound engine: traces, modes, schedules, accumulation, clipping, scopes, EMA, mixp."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nebulae.astro import init
from tests.conftest import assert_close
from tests.models.steps import mlp, train_dev


def _data(n=8, d=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), rng.integers(0, 5, size=n)


def test_one_trace_over_100_steps_per_mode_and_no_host_transfer(dock, engine):
    init.seed(0)
    net = mlp(dock, p_drop=0.2)
    train, dev = train_dev(dock, net, "Adam", lr=1e-3)
    x, z = _data()
    xs, zs = dock.coat(x), dock.coat(z)
    train(xs, zs)
    with dock.Nozzle():
        dev(xs)
    if engine == "jax":
        import jax

        with jax.transfer_guard_device_to_host("disallow"):
            for _ in range(100):
                loss = train(xs, zs)
            with dock.Nozzle():
                for _ in range(100):
                    dev(xs)
        assert train.traces == 1 and dev.traces == 1
        assert train.compile_seconds > 0
    else:
        for _ in range(100):
            loss = train(xs, zs)
        assert train.traces == 0
    assert np.isfinite(dock.shell(loss))
    assert train.optz.updates == 101


def test_dropout_draws_a_new_mask_every_step_and_none_in_eval(dock):
    class Drop(dock.Craft):
        def __init__(self):
            super().__init__("DROP")
            self.drop = dock.Dropout(0.5)

        def run(self, x):
            return self.drop(x)

    d = Drop()
    x = dock.coat(np.ones((64, 64), np.float32))
    with dock.Rudder():
        a, b = dock.shell(d(x)), dock.shell(d(x))
    assert not np.array_equal(a, b)
    assert set(np.unique(a)) <= {0.0, 2.0} and 0.4 < (a == 0).mean() < 0.6
    with dock.Nozzle():
        assert np.array_equal(dock.shell(d(x)), np.ones((64, 64), np.float32))


def test_channel_dropout_zeroes_whole_channels(dock):
    drop = dock.Dropout(0.5, dim=2)
    with dock.Rudder():
        y = dock.shell(drop(dock.coat(np.ones((4, 16, 5, 5), np.float32))))
    per_channel = y.reshape(4, 16, 25)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))
    assert 0 < (per_channel == 0).all(-1).mean() < 1


def _closed_form(name, t, lr):
    """Schedules written out independently of nebulae.astro.schedule."""
    if name == "step":
        return lr * 0.5 ** (t // 3)
    if name == "poly":
        return (lr - 1e-3) * (1 - min(t, 6) / 6) ** 2 + 1e-3
    if name == "cos":
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(t, 6) / 6)))
    if name == "exp":
        return lr * 0.5 ** (t / 4)
    if name == "wavy":
        cycle = t // 4
        x = abs(2 * (t / 4 - cycle) - 1)
        return 0.5 * lr + 0.5 * lr * (1 - x) * 0.5**cycle
    return lr


def _schedule(dock, name):
    return {
        "step": dock.StepLR(3, 0.5),
        "poly": dock.PolyLR(6, 2.0, end=1e-3),
        "cos": dock.CosLR(6, floor=0.1),
        "exp": dock.ExpLR(4, 0.5),
        "wavy": dock.WavyLR(4, 0.5),
        "none": None,
    }[name]


@pytest.mark.parametrize("warmup", [0, 3])
@pytest.mark.parametrize("name", ["none", "step", "poly", "cos", "exp", "wavy"])
def test_each_update_uses_the_closed_form_rate(dock, name, warmup):
    lr = 0.1
    layer = dock.Dense(1, 1, w_init=dock.Zeros())

    class Descend(dock.Craft):
        def __init__(self):
            super().__init__("DESCEND")
            self.layer = layer
            self.optz = dock.Momentum(layer, lr=lr, mmnt=0.0, lr_decay=_schedule(dock, name), warmup=warmup)

        def run(self, x):
            loss = self.layer(x).sum()  # d loss / d weight = 1: each update moves the weight by -rate
            self.optz(loss)
            return loss

    step = Descend()
    one = dock.coat(np.ones((1, 1), np.float32))
    previous = 0.0
    for t in range(14):
        expected = lr * (t + 1) / warmup if t < warmup else _closed_form(name, t - warmup, lr)
        assert step.optz.lr == pytest.approx(expected, rel=1e-5), f"reported rate at update {t}"
        step(one)
        weight = float(layer.export_weights()["weight"][0, 0])
        assert previous - weight == pytest.approx(expected, rel=1e-4, abs=1e-7), f"applied rate at update {t}"
        previous = weight


def test_grad_accum_equals_one_step_on_the_whole_batch(dock):
    x, z = _data(n=8)
    weights = []
    for accum, batches in ((1, [(x, z)]), (2, [(x[:4], z[:4]), (x[4:], z[4:])])):
        init.seed(4)
        net = mlp(dock, bn=False)
        train, _ = train_dev(dock, net, "Adam", lr=1e-2, grad_accum=accum)
        for _ in range(3):
            for xb, zb in batches:
                train(dock.coat(xb), dock.coat(zb))
        assert train.optz.updates == 3
        weights.append(net.export_weights())
    for key in weights[0]:
        assert_close(weights[1][key], weights[0][key], rtol=1e-4, atol=1e-6, what=key)


def test_grad_limit_clips_the_global_norm(dock):
    init.seed(0)
    layer = dock.Dense(3, 2)

    class Big(dock.Craft):
        def __init__(self):
            super().__init__("BIG")
            self.layer = layer
            self.optz = dock.Momentum(layer, lr=1.0, mmnt=0.0, grad_limit=0.5)

        def run(self, x):
            loss = 1000.0 * self.layer(x).sum()
            self.optz(loss)
            return loss

    before = layer.export_weights()
    Big()(dock.coat(np.ones((4, 3), np.float32)))
    after = layer.export_weights()
    moved = math.sqrt(sum(float(((after[k] - before[k]) ** 2).sum()) for k in before))
    assert moved == pytest.approx(0.5, rel=1e-4)


def test_update_scope_updates_only_that_sub_craft(dock):
    init.seed(0)
    net = mlp(dock, bn=False)
    train, _ = train_dev(dock, net, "Adam", lr=1e-2, update_scope="fc2")
    before = net.export_weights()
    x, z = _data()
    train(dock.coat(x), dock.coat(z))
    after = net.export_weights()
    assert np.array_equal(after["fc1/weight"], before["fc1/weight"])
    assert not np.array_equal(after["fc2/weight"], before["fc2/weight"])
    with pytest.raises(ValueError, match="update_scope 'fc3'"):
        dock.Adam(net, lr=1e-3, update_scope="fc3")
    with pytest.raises(ValueError, match="update_scope 'fc'"):
        dock.Adam(net, lr=1e-3, update_scope="fc")  # a '/' boundary, not a raw string prefix


def test_ema_update_on_off_round_trip_exactly(dock):
    init.seed(0)
    net = mlp(dock)
    decay = 0.9
    train, dev = train_dev(dock, net, "Adam", lr=1e-2, ema=decay)
    w0 = net.export_weights()
    x, z = _data()
    train(dock.coat(x), dock.coat(z))
    w1 = net.export_weights()
    train.ema.on()
    shadow = net.export_weights()
    for key in w0:
        if np.issubdtype(w0[key].dtype, np.integer):  # BN's num_batches_tracked: integer buffers left alone
            assert np.array_equal(shadow[key], w1[key]) and w1[key] == 1, key
        else:
            assert_close(shadow[key], decay * w0[key] + (1 - decay) * w1[key], rtol=1e-6, atol=1e-7, what=key)
    with dock.Nozzle():
        y_shadow = dock.shell(dev(dock.coat(x)))
    train.ema.on()  # idempotent
    train.ema.off()
    back = net.export_weights()
    for key in w1:
        assert np.array_equal(back[key], w1[key]), f"{key} not restored bit for bit"
    with dock.Nozzle():
        y_trained = dock.shell(dev(dock.coat(x)))
    assert not np.allclose(y_shadow, y_trained)
    train.ema.on()
    with pytest.raises(RuntimeError, match="off\\(\\) first"):
        train.ema.update()
    train.ema.off()


def test_optimizer_refuses_to_apply_under_nozzle_or_prober(dock):
    init.seed(0)
    net = mlp(dock, bn=False)
    train, _ = train_dev(dock, net, "Adam", lr=1e-2)

    class Sneaky(dock.Craft):
        def __init__(self):
            super().__init__("SNEAKY")
            self.net, self.loss, self.optz = net, dock.SftmXE(), dock.Adam(net, lr=1e-2)

        def run(self, x, z):
            with dock.Nozzle():
                loss = self.loss(self.net(x), z)
                self.optz(loss)
            return loss

    x, z = _data()
    with pytest.raises(RuntimeError, match="called under Nozzle"):
        Sneaky()(dock.coat(x), dock.coat(z))


def test_gear_inside_a_context_lasts_for_that_context_only(dock):
    init.seed(0)
    net = mlp(dock)

    class Frozen(dock.Craft):
        def __init__(self):
            super().__init__("FROZEN")
            self.net, self.loss, self.optz = net, dock.SftmXE(), dock.Adam(net, lr=1e-2)

        def run(self, x, z):
            with dock.Rudder():
                self.net.bn.gear(False)  # fine-tuning with frozen BN statistics
                loss = self.loss(self.net(x), z)
                self.optz(loss)
            return loss

    before = net.export_weights()
    x, z = _data()
    Frozen()(dock.coat(x), dock.coat(z))
    after = net.export_weights()
    assert np.array_equal(after["bn/running_mean"], before["bn/running_mean"])
    assert not np.array_equal(after["fc2/weight"], before["fc2/weight"])
    train, _ = train_dev(dock, net, "Adam", lr=1e-2)
    train(dock.coat(x), dock.coat(z))  # a plain Rudder step afterwards updates the statistics again
    assert not np.array_equal(net.export_weights()["bn/running_mean"], before["bn/running_mean"])


@pytest.mark.parametrize("dtype, scaled", [("bfloat16", False), ("float16", True)])
def test_mixed_precision_trains_with_float32_master_weights(dock, dtype, scaled):
    init.seed(0)
    net = mlp(dock, bn=False).mixp(dtype)
    train, _ = train_dev(dock, net, "Adam", lr=1e-2, mixp=scaled)
    x, z = _data(n=32)
    losses = [dock.shell(train(dock.coat(x), dock.coat(z))) for _ in range(15)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert all(v.dtype == np.float32 for v in net.export_weights().values())
    assert train.optz.loss_scale == (2.0**16 if scaled else 1.0)


def test_optimizer_over_a_model_outside_the_step_is_a_clear_error(dock, engine):
    if engine != "jax":
        pytest.skip("torch optimizers hold their parameters directly")
    stray = mlp(dock, bn=False)

    class Lost(dock.Craft):
        def __init__(self):
            super().__init__("LOST")
            self.optz = dock.Adam(stray, lr=1e-3)

        def run(self, x):
            return x

    with pytest.raises(RuntimeError, match="not part of Lost"):
        Lost()(dock.coat(np.ones(2, np.float32)))
