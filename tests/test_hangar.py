"""The hangar model zoo: published parameter counts, torchvision's layer shapes, cross-engine parity, training.

Per-engine tests use the `dock` fixture (both passes); cross-engine parity builds each model with the
same seed on both backend docks through `hangar.build(dock)` and compares eval outputs (marked once).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nebulae.astro import hangar, init
from tests.conftest import run_python

RNG = np.random.default_rng(0)
IMAGES = RNG.normal(size=(2, 3, 32, 32)).astype(np.float32)


def models(dock):
    return hangar.build(dock)


def shapes(craft) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in craft.export_weights().items()}


def bn_shapes(path: str, chs: int) -> dict[str, tuple]:
    table = {f"{path}/{k}": (chs,) for k in ("weight", "bias", "running_mean", "running_var")}
    return table | {f"{path}/num_batches_tracked": ()}


def torchvision_resnet(depth: int, nclass: int, in_chs: int = 3) -> dict[str, tuple]:
    """torchvision's resnet{depth} state_dict shapes ('.' -> '/'), written out."""
    bottleneck = depth == 50
    counts = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}[depth]
    out = {"conv1/weight": (64, in_chs, 7, 7), **bn_shapes("bn1", 64)}
    chs = 64
    for i, (width, count) in enumerate(zip((64, 128, 256, 512), counts)):
        for j in range(count):
            p = f"layer{i + 1}/{j}"
            stride = 2 if i > 0 and j == 0 else 1
            if bottleneck:
                out[f"{p}/conv1/weight"] = (width, chs, 1, 1)
                out[f"{p}/conv2/weight"] = (width, width, 3, 3)
                out[f"{p}/conv3/weight"] = (width * 4, width, 1, 1)
                out |= bn_shapes(f"{p}/bn1", width) | bn_shapes(f"{p}/bn2", width) | bn_shapes(f"{p}/bn3", width * 4)
                new = width * 4
            else:
                out[f"{p}/conv1/weight"] = (width, chs, 3, 3)
                out[f"{p}/conv2/weight"] = (width, width, 3, 3)
                out |= bn_shapes(f"{p}/bn1", width) | bn_shapes(f"{p}/bn2", width)
                new = width
            if stride != 1 or chs != new:
                out[f"{p}/downsample/0/weight"] = (new, chs, 1, 1)
                out |= bn_shapes(f"{p}/downsample/1", new)
            chs = new
    out["fc/weight"], out["fc/bias"] = (nclass, chs), (nclass,)
    return out


def trainable(table: dict[str, tuple]) -> int:
    return sum(
        math.prod(s) for k, s in table.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    )


# ---- per engine: published counts and layer shapes ----


@pytest.mark.parametrize(("depth", "published"), [(18, 11_689_512), (34, 21_797_672), (50, 25_557_032)])
def test_resnet_matches_torchvision_layer_by_layer_and_in_count(dock, depth, published):
    net = getattr(models(dock), f"ResNet{depth}")()
    expected = torchvision_resnet(depth, 1000)
    assert trainable(expected) == published  # the written-out table is torchvision's
    assert shapes(net) == expected
    assert hangar.nparams(net) == published


def vgg16_count(c: int, h: int, w: int, nclass: int) -> int:
    convs, chs = 0, c
    for width in (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512):
        convs += 9 * chs * width + width
        chs = width
    flat = 512 * (h // 32) * (w // 32)
    return convs + flat * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * nclass + nclass


def test_vgg16_count_layout_and_dropout(dock):
    assert vgg16_count(3, 224, 224, 1000) == 138_357_544  # the formula gives the published count
    net = models(dock).VGG_16(3, 10, p_drop=0.9, in_shape=(3, 32, 32))
    assert hangar.nparams(net) == vgg16_count(3, 32, 32, 10)
    got = shapes(net)
    convs = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)  # torchvision's features indices
    assert sorted(got) == sorted(
        [f"features/{i}/{p}" for i in convs for p in ("weight", "bias")]
        + [f"classifier/{i}/{p}" for i in (0, 3, 6) for p in ("weight", "bias")]
    )
    assert got["features/0/weight"] == (64, 3, 3, 3) and got["classifier/0/weight"] == (4096, 512)
    x = dock.coat(IMAGES)
    with dock.Nozzle():
        evals = [dock.shell(net(x)) for _ in range(2)]
    with dock.Rudder():
        train = dock.shell(net(x))
    np.testing.assert_array_equal(evals[0], evals[1])
    assert not np.allclose(train, evals[0]), "p_drop=0.9 must act in train mode"
    with pytest.raises(ValueError, match="multiples of 32"):
        models(dock).VGG_16(in_shape=(3, 40, 40))
    with pytest.raises(ValueError, match="in_chs 1 differs"):
        models(dock).VGG_16(1, in_shape=(3, 32, 32))


def test_dcgan_counts_shapes_and_range(dock):
    gan = models(dock).DCGAN()
    assert hangar.nparams(gan.generator) == 3_576_704  # PyTorch DCGAN tutorial, nz=100, ngf=ndf=64
    assert hangar.nparams(gan.discriminator) == 2_765_568
    small = models(dock).DCGAN((1, 16, 32), latent_dim=8, base_chs=4)
    z = dock.coat(np.random.default_rng(5).normal(size=(3, 8)).astype(np.float32) * 10)
    with dock.Nozzle():
        img = small.generator(z)
        logits = dock.shell(small.discriminator(img))
        img = dock.shell(img)
    assert img.shape == (3, 1, 16, 32) and logits.shape == (3, 1)
    assert np.abs(img).max() <= 1.0 and img.std() > 1e-3  # tanh range; not a constant image
    with pytest.raises(ValueError, match="multiples of 16"):
        models(dock).DCGAN((3, 24, 32))


def example_dcgan_shapes(nz: int, ngf: int, ndf: int, nc: int) -> tuple[dict, dict]:
    """pytorch/examples dcgan's netG and netD state_dict shapes ('.' -> '/') for 64x64 images, written out."""
    g, d = {}, {}
    widths = [nz, ngf * 8, ngf * 4, ngf * 2, ngf]
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        g[f"main/{3 * i}/weight"] = (a, b, 4, 4)
        g |= bn_shapes(f"main/{3 * i + 1}", b)
    g["main/12/weight"] = (ngf, nc, 4, 4)
    d["main/0/weight"] = (ndf, nc, 4, 4)
    widths = [ndf, ndf * 2, ndf * 4, ndf * 8]
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        d[f"main/{3 * i + 2}/weight"] = (b, a, 4, 4)
        d |= bn_shapes(f"main/{3 * i + 3}", b)
    d["main/11/weight"] = (1, ndf * 8, 4, 4)
    return g, d


def test_dcgan_takes_separate_generator_and_discriminator_widths(dock):
    gan = models(dock).DCGAN((3, 64, 64), latent_dim=100, g_chs=32, d_chs=16)
    g, d = example_dcgan_shapes(nz=100, ngf=32, ndf=16, nc=3)
    assert shapes(gan.generator) == g and shapes(gan.discriminator) == d
    with pytest.raises(ValueError, match="positive widths"):
        models(dock).DCGAN(g_chs=0)


def test_vae_count_and_sampling_modes(dock):
    assert hangar.nparams(models(dock).VAE()) == 652_824  # the PyTorch VAE example (784-400-20)
    vae = models(dock).VAE((3, 32, 32), hidden_dim=32, latent_dim=4)
    x = dock.coat(IMAGES)
    zeros = dock.coat(np.zeros((2, 4), np.float32))
    with dock.Nozzle():
        rec, mu, logvar = dock.shell(vae(x))
        rec0, _, _ = dock.shell(vae(x, eps=zeros))
    assert rec.shape == (2, 3, 32, 32) and mu.shape == logvar.shape == (2, 4)
    np.testing.assert_allclose(rec, rec0, atol=1e-6)  # eval without eps decodes mu
    with dock.Rudder():
        first = dock.shell(vae(x))
        second = dock.shell(vae(x))
    np.testing.assert_allclose(first[1], mu, atol=1e-6)  # no BN/dropout: mu is mode-independent
    assert not np.allclose(first[0], second[0]), "train mode draws fresh noise every call"
    assert not np.allclose(first[0], rec)


def test_vqvae_quantises_to_the_nearest_code_with_straight_through_gradients(dock):
    vq = models(dock).VQVAE((3, 32, 32), hidden_dim=16, ncodes=8, code_dim=4)
    with dock.Nozzle():
        rec, loss, codes = dock.shell(vq(dock.coat(IMAGES)))
    assert rec.shape == (2, 3, 32, 32) and np.shape(loss) == () and codes.shape == (2, 8, 8)
    quantiser = vq.quantiser
    book = quantiser.export_weights()["codebook/weight"]
    z = RNG.normal(scale=0.2, size=(2, 4, 3, 5)).astype(np.float32)
    with dock.Nozzle():
        out, vq_loss, idx = dock.shell(quantiser(dock.coat(z)))
    flat = z.transpose(0, 2, 3, 1).reshape(-1, 4)
    nearest = ((flat[:, None, :] - book[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_array_equal(idx.reshape(-1), nearest)
    np.testing.assert_allclose(out.transpose(0, 2, 3, 1).reshape(-1, 4), book[nearest], atol=1e-6)
    np.testing.assert_allclose(vq_loss, 1.25 * ((flat - book[nearest]) ** 2).mean(), rtol=1e-5)

    class Probe(dock.Craft):
        def __init__(self):
            super().__init__("PROBE")
            self.q, self.sum = quantiser, dock.Sum()

        def run(self, z, r):
            return self.sum(self.q(z)[0] * r)

    r = RNG.normal(size=z.shape).astype(np.float32)
    with dock.Prober(wrt=(0,)) as pb:
        Probe()(dock.coat(z), dock.coat(r))
    np.testing.assert_allclose(dock.shell(pb.grads["inputs"][0]), r, atol=1e-6)  # straight through


def test_unet_keeps_the_size_and_checks_it(dock):
    net = models(dock).UNet(3, 2, base_chs=4, depth=2)
    with dock.Nozzle():
        y = dock.shell(net(dock.coat(IMAGES[:, :, :16, :24])))
    assert y.shape == (2, 2, 16, 24)
    assert "up/0/weight" in net.export_weights() and "dec/1/conv2/weight" in net.export_weights()
    with pytest.raises(ValueError, match="multiples of 4"):
        net(dock.coat(IMAGES[:, :, :18, :24]))


def test_bad_arguments_are_named(dock):
    zoo = models(dock)
    with pytest.raises(ValueError, match="depth must be one of"):
        zoo.ResNet(20)
    with pytest.raises(ValueError, match=r"in_shape must be \(C, H, W\)"):
        zoo.ResNet(18, in_shape=(224, 224))
    with pytest.raises(ValueError, match=r"takes \(B, 3, H, W\)"):
        zoo.ResNet18(10, (3, 32, 32))(dock.coat(IMAGES[:, :1]))
    with pytest.raises(ValueError, match="depth >= 1"):
        zoo.UNet(depth=0)


def test_front_names_resolve_against_the_bound_engine(dock):
    from nebulae import law

    assert hangar.ResNet18 is hangar.build(law.backend().dock).ResNet18
    assert isinstance(hangar.UNet(base_chs=2, depth=1), dock.Craft)
    with pytest.raises(AttributeError, match="no 'ResNet101'"):
        hangar.ResNet101  # noqa: B018


@pytest.mark.once
def test_importing_the_hangar_binds_no_engine():
    code = (
        "import sys\nfrom nebulae.astro import hangar\nassert 'VQVAE' in dir(hangar)\n"
        "print(sorted(m for m in ('torch', 'jax', 'flax') if m in sys.modules))"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ---- per engine: the two crafts the hangar added to the dock ----


def test_stopgrad_passes_values_and_blocks_gradients(dock):
    class F(dock.Craft):
        def __init__(self):
            super().__init__("F")
            self.sg, self.sum = dock.StopGrad(), dock.Sum()

        def run(self, x):
            return self.sum(x * x + self.sg(x) * x)  # d/dx = 2x + x; without the stop it would be 4x

    x = RNG.normal(size=(3, 4)).astype(np.float32)
    with dock.Prober(wrt=(0,)) as pb:
        value = dock.shell(F()(dock.coat(x)))
    np.testing.assert_allclose(value, 2 * (x * x).sum(), rtol=1e-5)
    np.testing.assert_allclose(dock.shell(pb.grads["inputs"][0]), 3 * x, rtol=1e-5)


def test_gauss_draws_fresh_standard_normal_noise(dock):
    gauss = dock.Gauss()
    x = dock.coat(np.zeros((100, 100), np.float32))
    with dock.Nozzle():
        a, b = dock.shell(gauss(x)), dock.shell(gauss(x))
    assert a.shape == (100, 100) and a.dtype == np.float32
    assert abs(a.mean()) < 0.05 and abs(a.std() - 1) < 0.05
    assert not np.allclose(a, b)


# ---- per engine: one training step ----


def test_resnet18_trains_one_step(dock):
    init.seed(0)
    net = models(dock).ResNet18(10, (3, 32, 32))

    class Train(dock.Craft):
        def __init__(self):
            super().__init__("TRAIN")
            self.net, self.loss = net, dock.SftmXE()
            self.optz = dock.Adam(net, lr=1e-3)

        def run(self, x, z):
            with dock.Rudder() as rd:
                self.net.gear(rd)
                loss = self.loss(self.net(x), z)
                self.optz(loss)
            return loss

    before = net.export_weights()
    loss = float(dock.shell(Train()(dock.coat(IMAGES), dock.coat(np.array([1, 7], np.int64)))))
    after = net.export_weights()
    assert np.isfinite(loss) and loss > 0
    for key in ("conv1/weight", "layer4/1/conv2/weight", "fc/bias", "layer1/0/bn1/running_mean"):
        assert not np.allclose(before[key], after[key]), f"{key} did not change"


# ---- cross-engine parity (same seed, same weights; eval mode) ----


@pytest.fixture
def parity():
    """tests.parity, imported by the parity tests only: it loads both engines (the JAX-only pass has no torch)."""
    from tests import parity as module

    return module


PARITY = {
    "ResNet18": (lambda h: h.ResNet18(10, (3, 32, 32)), IMAGES, 1e-5),
    "ResNet50": (lambda h: h.ResNet50(10, (3, 32, 32)), IMAGES, 1e-5),
    "VGG_16": (lambda h: h.VGG_16(3, 10, in_shape=(3, 32, 32)), IMAGES, 1e-5),
    "DCGAN.generator": (lambda h: h.DCGAN((3, 32, 32), 16, 8).generator, RNG.normal(size=(2, 16)), 1e-5),
    "DCGAN.discriminator": (lambda h: h.DCGAN((3, 32, 32), 16, 8).discriminator, IMAGES, 1e-5),
    "VAE": (lambda h: h.VAE((3, 32, 32), 32, 4), IMAGES, 1e-5),
    "VQVAE": (lambda h: h.VQVAE((3, 32, 32), 16, 8, 4), IMAGES, 1e-5),
    "UNet": (lambda h: h.UNet(3, 2, 4, 3), IMAGES, 1e-5),
}


@pytest.mark.once
@pytest.mark.parametrize("name", sorted(PARITY))
def test_eval_outputs_and_weights_agree_across_engines(parity, name):
    make, x, tol = PARITY[name]
    out_t, out_j, craft_t, craft_j = parity.outputs(lambda d: make(models(d)), np.asarray(x, np.float32))
    parity.assert_same(craft_t.export_weights(), craft_j.export_weights(), 0, 0, f"{name} initial weights")
    assert hangar.nparams(craft_t) == hangar.nparams(craft_j)
    parity.assert_same(out_t, out_j, tol, tol, f"{name} eval outputs")


@pytest.mark.once
def test_vae_with_given_noise_agrees_across_engines_in_train_mode(parity):
    eps = RNG.normal(size=(2, 4)).astype(np.float32)
    results = []
    for dock in parity.DOCKS:
        init.seed(3)
        vae = models(dock).VAE((3, 32, 32), 32, 4)
        with dock.Rudder():
            results.append(dock.shell(vae(dock.coat(IMAGES), eps=dock.coat(eps))))
    parity.assert_same(results[0], results[1], 1e-5, 1e-5, "VAE train-mode outputs with explicit eps")


@pytest.mark.once
def test_stopgrad_agrees_across_engines(parity):
    x = RNG.normal(size=(2, 5)).astype(np.float32)
    out_t, out_j, _, _ = parity.outputs(lambda d: d.StopGrad(), x)
    parity.assert_same(out_t, out_j, 0, 0, "StopGrad")
    np.testing.assert_array_equal(out_t, x)
