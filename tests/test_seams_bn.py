"""BatchNorm seams between the engines: one value per channel, torch's num_batches_tracked, gear(stats=False).

References are plain torch.nn modules (BatchNorm1d/2d, a Conv + BN model, a DCGAN-style generator run
once per iteration as pytorch/examples/dcgan does). Per-engine tests use the `dock` fixture; the
cross-engine comparisons are marked `once`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nebulae.astro import init
from nebulae.cockpit import TimeMachine
from tests import parity

RNG = np.random.default_rng(7)


def data(*shape, shift=0.0):
    return (RNG.normal(size=shape) * 2.0 + shift).astype(np.float32)


def torch_weights(module: nn.Module) -> dict[str, np.ndarray]:
    """A torch state_dict as Nebulae paths, exactly as a user converts one (num_batches_tracked included)."""
    return {k.replace(".", "/"): v.numpy().copy() for k, v in module.state_dict().items()}


def bn_state(craft) -> dict[str, np.ndarray]:
    return {k: v for k, v in craft.export_weights().items() if k.endswith(("running_mean", "running_var", "tracked"))}


# ------------------------------------------------------------------- 1. one value per channel in train mode


@pytest.mark.parametrize(("dim", "shape"), [(1, (1, 3)), (1, (1, 3, 1)), (2, (1, 3, 1, 1))])
def test_bn_with_one_value_per_channel_refuses_train_mode_as_torch(dock, dim, shape):
    ref = (nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d)(3).train()
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        ref(torch.zeros(shape))  # the outside reference refuses it too
    bn = dock.BN(3, dim)
    before = bn.export_weights()
    xn = data(*shape)
    x = dock.coat(xn)
    for gear in ({}, {"stats": False}):  # batch statistics are used either way
        with pytest.raises(ValueError) as err, dock.Rudder() as rd:
            bn.gear(rd, **gear)
            bn(x)
        message = str(err.value)
        assert message.startswith("BN: train mode needs more than one value per channel")
        assert f"got input {shape}" in message and "N > 1" in message and "eval mode" in message
    for key, value in bn.export_weights().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)  # nothing decayed
    with dock.Nozzle():
        out = dock.shell(bn(x))  # eval mode normalises one value with the running statistics
    np.testing.assert_allclose(out, ref.eval()(torch.from_numpy(xn)).detach().numpy(), rtol=1e-5, atol=1e-5)
    with dock.Rudder():
        bn(dock.coat(data(2, *shape[1:])))  # two values per channel are enough
    assert int(bn.export_weights()["num_batches_tracked"]) == 1


def test_cbn_names_itself_for_one_value_per_channel(dock):
    cbn = dock.CBN(4, 3, 2)
    message = r"^CBN: train mode needs more than one value per channel.*\(1, 3, 1, 1\)"
    with pytest.raises(ValueError, match=message), dock.Rudder():
        cbn(dock.coat(data(1, 3, 1, 1)), dock.coat(data(1, 4)))


# ------------------------------------------------------------------- 2. num_batches_tracked


class TorchNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3), nn.BatchNorm2d(2)
        )

    def forward(self, x):
        return self.main(x)


def dock_net(dock):
    class Net(dock.Craft):
        """The same structure as TorchNet, written with dock crafts."""

        def __init__(self):
            super().__init__("NET")
            self.main = [
                dock.Conv(3, 4, (3, 3), 1, 1),
                dock.BN(4, 2),
                dock.Relu(),
                dock.Conv(4, 2, (3, 3)),
                dock.BN(2, 2),
            ]

        def run(self, x):
            for layer in self.main:
                x = layer(x)
            return x

    return Net()


def test_torch_state_dict_imports_strictly_and_runs_as_torch_in_both_modes(dock):
    torch.manual_seed(0)
    ref = TorchNet()
    with torch.no_grad():
        for bn in (ref.main[1], ref.main[4]):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
        for step in range(2):  # non-trivial statistics and counters (2) before the export
            ref.train()(torch.from_numpy(data(4, 3, 5, 5, shift=step)))
    net = dock_net(dock)
    report = net.import_weights(torch_weights(ref), strict=True)
    assert report.clean
    assert sorted(net.export_weights()) == sorted(torch_weights(ref))
    assert int(net.export_weights()["main/1/num_batches_tracked"]) == 2
    x = data(3, 3, 5, 5, shift=1.0)
    with dock.Nozzle():
        out = dock.shell(net(dock.coat(x)))
    np.testing.assert_allclose(out, ref.eval()(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5)
    for step in range(3):
        x = data(4, 3, 5, 5, shift=-step)
        with dock.Rudder():
            out = dock.shell(net(dock.coat(x)))
        expected = ref.train()(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5, err_msg=f"train step {step}")
    got, want = net.export_weights(), torch_weights(ref)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-5, err_msg=key)
    assert int(got["main/1/num_batches_tracked"]) == int(got["main/4/num_batches_tracked"]) == 5
    assert int(ref.main[1].num_batches_tracked) == 5


def test_num_batches_tracked_counts_train_updates_and_survives_anchors(dock, engine, tmp_path):
    bn = dock.BN(3, 2)
    x = dock.coat(data(4, 3, 2, 2))

    def count():
        value = bn.export_weights()["num_batches_tracked"]
        assert value.shape == () and value.dtype == (np.int64 if engine == "pytorch" else np.int32)
        return int(value)

    for _ in range(2):
        with dock.Rudder():
            bn(x)
    with dock.Nozzle():
        bn(x)
    assert count() == 2  # eval-mode calls do not count
    ema = dock.EMA(bn, decay=0.5)
    assert "num_batches_tracked" not in ema.shadow()  # integer buffers stay out of the EMA
    ema.update()
    ema.on()
    assert count() == 2
    ema.off()
    tm = TimeMachine(tmp_path, tmp_path)
    tm.drop(bn, file="bn")
    tm.drop(bn, file="bn.h5")
    tm.wait()
    with dock.Rudder():
        bn(x)
    assert count() == 3
    for file in ("bn", "bn.h5"):
        tm.to(bn, file=file, frozen=True)
        assert count() == 2, file


@pytest.mark.once
def test_exported_keys_and_counters_agree_between_engines(both):
    nets = [parity.build(dock, dock_net) for dock in both]
    exported = [net.export_weights() for net in nets]
    assert sorted(exported[0]) == sorted(exported[1])
    assert sum(k.endswith("num_batches_tracked") for k in exported[0]) == 2
    x = data(4, 3, 5, 5)
    for dock, net in zip(both, nets):
        for _ in range(2):
            with dock.Rudder():
                net(dock.coat(x))
    tw, jw = (net.export_weights() for net in nets)
    parity.assert_same(tw, jw, what="weights and statistics after 2 train calls")
    assert int(tw["main/4/num_batches_tracked"]) == int(jw["main/4/num_batches_tracked"]) == 2
    nets[1].import_weights(tw, strict=True)  # each engine loads the other's export strictly
    nets[0].import_weights(jw, strict=True)


# ------------------------------------------------------------------- 3. gear(stats=False): GAN steps


LATENT, BATCH = 4, 6


class TorchGenerator(nn.Module):
    """pytorch/examples/dcgan's generator layout, tiny: (B, 4, 1, 1) -> (B, 1, 4, 4)."""

    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(LATENT, 6, 2, 1, 0, bias=False),
            nn.BatchNorm2d(6),
            nn.ReLU(),
            nn.ConvTranspose2d(6, 1, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.main(z)


def gan(dock):
    """(G, D step, G step) in the README's one-step-craft-per-player pattern; `stats` gears G in the D step."""

    class Generator(dock.Craft):
        def __init__(self):
            super().__init__("G")
            self.main = [
                dock.TransConv(LATENT, 6, (2, 2), 1, 0, b_init=dock.Void()),
                dock.BN(6, 2),
                dock.Relu(),
                dock.TransConv(6, 1, (4, 4), 2, 1, b_init=dock.Void()),
                dock.Tanh(),
            ]

        def run(self, z):
            for layer in self.main:
                z = layer(z)
            return z

    class Discriminator(dock.Craft):
        def __init__(self):
            super().__init__("D")
            self.conv = dock.Conv(1, 1, (4, 4))  # (B, 1, 4, 4) images -> (B, 1, 1, 1) logits

        def run(self, x):
            return self.conv(x)

    class DStep(dock.Craft):
        def __init__(self, G, D, stats: bool):
            super().__init__("DSTEP")
            self.G, self.D, self.stats = G, D, stats
            self.loss, self.optz = dock.SigmXE(), dock.Adam(D, lr=1e-2)

        def run(self, real, z, ones, zeros):
            with dock.Rudder() as rd:
                self.G.gear(rd, stats=self.stats)  # G only supplies fakes here
                fake = self.G(z)
                loss = self.loss(self.D(real), ones) + self.loss(self.D(fake), zeros)
                self.optz(loss)
            return loss

    class GStep(dock.Craft):
        def __init__(self, G, D):
            super().__init__("GSTEP")
            self.G, self.D = G, D
            self.loss, self.optz = dock.SigmXE(), dock.Adam(G, lr=1e-2)

        def run(self, z, ones):
            with dock.Rudder():
                loss = self.loss(self.D(self.G(z)), ones)
                self.optz(loss)
            return loss

    return Generator, Discriminator, DStep, GStep


def one_iteration(dock, ref: nn.Module, stats: bool, z: np.ndarray, real: np.ndarray) -> dict:
    """One D-then-G iteration with G loaded from `ref`; G's BN statistics afterwards."""
    Generator, Discriminator, DStep, GStep = gan(dock)
    init.seed(0)
    G, D = Generator(), Discriminator()
    G.import_weights(torch_weights(ref), strict=True)
    d_step, g_step = DStep(G, D, stats), GStep(G, D)
    ones, zeros = (dock.coat(np.full((BATCH, 1, 1, 1), v, np.float32)) for v in (1.0, 0.0))
    d_step(dock.coat(real), dock.coat(z), ones, zeros)
    g_step(dock.coat(z), ones)
    return bn_state(G)


def reference_generator() -> nn.Module:
    torch.manual_seed(1)
    return TorchGenerator()


def reference_stats(z: np.ndarray, forwards: int) -> dict:
    """G's BN statistics after `forwards` train-mode forwards of the same latents, as plain torch."""
    ref = TorchGenerator().train()
    ref.load_state_dict(reference_generator().state_dict())
    for _ in range(forwards):
        ref(torch.from_numpy(z))
    return {
        k: v for k, v in torch_weights(ref).items() if k.startswith("main/1/") and not k.endswith(("weight", "bias"))
    }


GAN_Z, GAN_REAL = data(BATCH, LATENT, 1, 1), np.tanh(data(BATCH, 1, 4, 4))


@pytest.mark.parametrize(("stats", "forwards"), [(False, 1), (True, 2)])
def test_gan_generator_statistics_move_once_per_iteration_with_stats_false(dock, stats, forwards):
    ref = reference_generator()
    got = one_iteration(dock, ref, stats, GAN_Z, GAN_REAL)
    want = reference_stats(GAN_Z, forwards)  # dcgan: one G forward per iteration; default: two
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert int(got["main/1/num_batches_tracked"]) == forwards
    if stats:  # the default really differs from the dcgan reference: stats=False is needed
        once = reference_stats(GAN_Z, 1)
        assert not np.allclose(got["main/1/running_mean"], once["main/1/running_mean"], atol=1e-4)


@pytest.mark.once
def test_gan_generator_statistics_agree_between_engines(both):
    ref = reference_generator()
    for stats in (False, True):
        tw, jw = (one_iteration(dock, ref, stats, GAN_Z, GAN_REAL) for dock in both)
        parity.assert_same(tw, jw, atol=1e-6, what=f"G statistics, stats={stats}")


def test_stats_false_keeps_train_mode_and_is_part_of_the_step_key(dock):
    init.seed(0)

    class Net(dock.Craft):
        def __init__(self):
            super().__init__("NET")
            self.fc, self.bn, self.drop = dock.Dense(3, 4), dock.BN(4, 1), dock.Dropout(0.5)

        def run(self, x):
            return self.bn(self.fc(x)), self.drop(x)

    class Forward(dock.Craft):
        def __init__(self, net):
            super().__init__("FORWARD")
            self.net = net

        def run(self, x):
            return self.net(x)

    net = Net()
    fwd, x = Forward(net), dock.coat(data(8, 3))

    def count():
        return int(net.export_weights()["bn/num_batches_tracked"])

    with dock.Nozzle():
        evaluated, _ = fwd(x)
    with dock.Rudder() as rd:
        net.gear(rd, stats=False)  # geared outside the step: the compiled step's cache key must see it
        frozen, dropped = fwd(x)
    assert count() == 0
    np.testing.assert_array_equal(net.export_weights()["bn/running_var"], np.ones(4, np.float32))
    assert not np.allclose(dock.shell(frozen), dock.shell(evaluated), atol=1e-3)  # batch statistics
    assert np.any(dock.shell(dropped) == 0.0)  # dropout is active: train mode
    with dock.Rudder() as rd:
        net.gear(rd)  # stats=True (default): the statistics move
        trained, _ = fwd(x)
    assert count() == 1
    np.testing.assert_allclose(dock.shell(trained), dock.shell(frozen), rtol=1e-5, atol=1e-5)
    net.gear(True, stats=False)  # outside a context: the geared default, for calls outside any context
    net(x)
    assert count() == 1
    net.gear(True)
    net(x)
    assert count() == 2
    with pytest.raises(TypeError, match="stats=\\) takes True or False"):
        net.gear(True, stats=0)


def test_weights_written_before_bn_kept_its_counter_still_load_strictly(dock, tmp_path):
    """Files without `num_batches_tracked` (older anchors, .h5, torch state dicts of version 1) load, counter kept."""
    from nebulae.cockpit import neutral

    bn = dock.BN(3, 2)
    with dock.Rudder():
        bn(dock.coat(data(4, 3, 2, 2)))
    old = {k: v for k, v in bn.export_weights().items() if not k.endswith("num_batches_tracked")}
    old["running_mean"] = np.full(3, 0.5, np.float32)
    fresh = dock.BN(3, 2)
    report = fresh.import_weights(old, strict=True)
    assert report.clean
    weights = fresh.export_weights()
    np.testing.assert_array_equal(weights["running_mean"], old["running_mean"])
    assert int(weights["num_batches_tracked"]) == 0
    path = str(tmp_path / "old.h5")
    neutral.write(path, old, {})
    TimeMachine(tmp_path, tmp_path).to(fresh, file="old.h5", frozen=True)
