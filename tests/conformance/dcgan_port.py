"""pytorch/examples dcgan/main.py written once with Nebulae dock crafts; runs unchanged on both engines.

One step craft per player (README: alternating GAN updates): `StepD` updates the discriminator on a real and
a fake batch, then `StepG` updates the generator through the (updated) discriminator. `StepG` recomputes
G(noise) (a step cannot keep a graph across calls on JAX); G's parameters have not changed in between, so
it is the example's `fake`. G runs in train mode in both steps, and `StepD` gears it with stats=False so its
BN statistics update once per iteration, as in the example.

Port notes: `criterion` is `dock.BCE` (torch's BCELoss, logs clamped at -100) against a `FullLike` label;
`bias=False` is `b_init=dock.Void()`; `.detach()` is `StopGrad`;
`weights_init` (normal init) is not expressible per layer type, so the initial weights are imported.
"""

from __future__ import annotations

import numpy as np

from nebulae.astro import dock
from tests.conformance import digits
from tests.conformance.settings import DCGAN as CFG

nz, ngf, ndf, nc = CFG["nz"], CFG["ngf"], CFG["ndf"], CFG["nc"]
real_label, fake_label = 1.0, 0.0


def up(in_chs: int, out_chs: int, stride: int = 2, padding: int = 1):
    """nn.ConvTranspose2d(in_chs, out_chs, 4, stride, padding, bias=False)."""
    return dock.TransConv(in_chs, out_chs, (4, 4), stride, padding, b_init=dock.Void())


def down(in_chs: int, out_chs: int, stride: int = 2, padding: int = 1):
    """nn.Conv2d(in_chs, out_chs, 4, stride, padding, bias=False)."""
    return dock.Conv(in_chs, out_chs, (4, 4), stride, padding, b_init=dock.Void())


class Generator(dock.Craft):
    def __init__(self, scope: str = "GENERATOR"):
        super().__init__(scope)
        self.main = [
            up(nz, ngf * 8, 1, 0),  # (ngf*8) x 4 x 4
            dock.BN(ngf * 8),
            dock.Relu(),
            up(ngf * 8, ngf * 4),  # (ngf*4) x 8 x 8
            dock.BN(ngf * 4),
            dock.Relu(),
            up(ngf * 4, ngf * 2),  # (ngf*2) x 16 x 16
            dock.BN(ngf * 2),
            dock.Relu(),
            up(ngf * 2, ngf),  # (ngf) x 32 x 32
            dock.BN(ngf),
            dock.Relu(),
            up(ngf, nc),  # (nc) x 64 x 64
            dock.Tanh(),
        ]

    def run(self, input):
        for layer in self.main:
            input = layer(input)
        return input


class Discriminator(dock.Craft):
    def __init__(self, scope: str = "DISCRIMINATOR"):
        super().__init__(scope)
        self.main = [
            down(nc, ndf),  # (ndf) x 32 x 32
            dock.LRelu(0.2),
            down(ndf, ndf * 2),  # (ndf*2) x 16 x 16
            dock.BN(ndf * 2),
            dock.LRelu(0.2),
            down(ndf * 2, ndf * 4),  # (ndf*4) x 8 x 8
            dock.BN(ndf * 4),
            dock.LRelu(0.2),
            down(ndf * 4, ndf * 8),  # (ndf*8) x 4 x 4
            dock.BN(ndf * 8),
            dock.LRelu(0.2),
            down(ndf * 8, 1, 1, 0),
            dock.Sigm(),
        ]
        self.view, self.squeeze = dock.Reshape(), dock.Squash()

    def run(self, input):
        for layer in self.main:
            input = layer(input)
        return self.squeeze(self.view(input, (-1, 1)), 1)


class BCELoss(dock.Craft):
    """nn.BCELoss() against a constant label, as the example's `criterion(output, label)` with a full label tensor."""

    def __init__(self, scope: str = "BCE"):
        super().__init__(scope)
        self.bce, self.real, self.fake = dock.BCE(), dock.FullLike(real_label), dock.FullLike(fake_label)

    def run(self, output, label: float):
        return self.bce(output, (self.real if label == real_label else self.fake)(output))


class StepD(dock.Craft):
    """(1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))."""

    def __init__(self, netD: Discriminator, netG: Generator, scope: str = "STEP_D"):  # noqa: N803 (the example's names)
        super().__init__(scope)
        self.netD, self.netG = netD, netG
        self.criterion, self.mean, self.detach = BCELoss(), dock.Mean(), dock.StopGrad()
        self.optimizerD = dock.Adam(netD, lr=CFG["lr"], mmnt1=CFG["beta1"], mmnt2=0.999)

    def run(self, real, noise):
        with dock.Rudder() as rd:
            self.netD.gear(rd)
            self.netG.gear(rd, stats=False)  # train mode; G's statistics update once, in StepG
            output = self.netD(real)
            errD_real = self.criterion(output, real_label)  # noqa: N806
            D_x = self.mean(output)  # noqa: N806
            fake = self.netG(noise)
            output = self.netD(self.detach(fake))
            errD_fake = self.criterion(output, fake_label)  # noqa: N806
            D_G_z1 = self.mean(output)  # noqa: N806
            errD = errD_real + errD_fake  # noqa: N806
            self.optimizerD(errD)
        return errD, D_x, D_G_z1


class StepG(dock.Craft):
    """(2) Update G network: maximize log(D(G(z)))."""

    def __init__(self, netD: Discriminator, netG: Generator, scope: str = "STEP_G"):  # noqa: N803
        super().__init__(scope)
        self.netD, self.netG = netD, netG
        self.criterion, self.mean = BCELoss(), dock.Mean()
        self.optimizerG = dock.Adam(netG, lr=CFG["lr"], mmnt1=CFG["beta1"], mmnt2=0.999)

    def run(self, noise):
        with dock.Rudder() as rd:
            self.netD.gear(rd)
            self.netG.gear(rd)
            output = self.netD(self.netG(noise))
            errG = self.criterion(output, real_label)  # fake labels are real for generator cost  # noqa: N806
            D_G_z2 = self.mean(output)  # noqa: N806
            self.optimizerG(errG)
        return errG, D_G_z2


class Sample(dock.Craft):
    """netG(fixed_noise) as the example calls it: outside any mode context, in G's default (train) mode."""

    def __init__(self, netG: Generator, scope: str = "SAMPLE"):  # noqa: N803
        super().__init__(scope)
        self.netG = netG

    def run(self, noise):
        return self.netG(noise)


def run(steps: int, init_weights: dict[str, np.ndarray]) -> dict:
    netG, netD = Generator(), Discriminator()  # noqa: N806
    netG.import_weights({k[5:]: v for k, v in init_weights.items() if k.startswith("netG/")})
    netD.import_weights({k[5:]: v for k, v in init_weights.items() if k.startswith("netD/")})
    step_d, step_g, sample = StepD(netD, netG), StepG(netD, netG), Sample(netG)
    fixed_noise = dock.coat(digits.normal((CFG["batch"], nz, 1, 1), 1, seed=22)[0])
    dataloader = digits.batches(CFG["size"], CFG["batch"], steps, norm=(0.5, 0.5))
    noises = digits.normal((CFG["batch"], nz, 1, 1), steps, seed=21)
    log = {name: [] for name in ("errD", "errG", "D_x", "D_G_z1", "D_G_z2")}
    samples = {}
    for i, data in enumerate(dataloader):
        noise = dock.coat(noises[i])
        errD, D_x, D_G_z1 = step_d(dock.coat(data[0]), noise)  # noqa: N806
        errG, D_G_z2 = step_g(noise)  # noqa: N806
        for name, value in zip(log, (errD, errG, D_x, D_G_z1, D_G_z2)):
            log[name].append(float(dock.shell(value)))
        if i % 100 == 0:
            samples[f"fake_{i}"] = dock.shell(sample(fixed_noise))
    weights = {**{f"netG/{k}": v for k, v in netG.export_weights().items()}}
    weights.update({f"netD/{k}": v for k, v in netD.export_weights().items()})
    return {"losses": {k: np.array(v) for k, v in log.items()}, "weights": weights, "eval": samples}
