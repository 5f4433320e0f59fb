"""pytorch/examples dcgan/main.py in plain torch, on the digits (mnist branch; see settings.DCGAN for sizes).

weights_init, Generator, Discriminator and the training loop follow the example (without the ngpu /
data_parallel branches, image saving and checkpoints); the loop's noise is drawn with NumPy (shared with the port).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

from tests.conformance import digits
from tests.conformance.mnist_plain import export, restore
from tests.conformance.settings import DCGAN as CFG

ENGINE = "pytorch"
nz, ngf, ndf, nc = CFG["nz"], CFG["ngf"], CFG["ndf"], CFG["nc"]


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        torch.nn.init.normal_(m.weight, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        torch.nn.init.normal_(m.weight, 1.0, 0.02)
        torch.nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),  # (ngf*8) x 4 x 4
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),  # (ngf*4) x 8 x 8
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),  # (ngf*2) x 16 x 16
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),  # (ngf) x 32 x 32
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),  # (nc) x 64 x 64
            nn.Tanh(),
        )

    def forward(self, input):
        return self.main(input)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),  # (ndf) x 32 x 32
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),  # (ndf*2) x 16 x 16
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),  # (ndf*4) x 8 x 8
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),  # (ndf*8) x 4 x 4
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, input):
        output = self.main(input)
        return output.view(-1, 1).squeeze(1)


def pair(weights: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """One player's weights out of the joint {'netG/...', 'netD/...'} dictionary."""
    return {k[len(prefix) + 1 :]: v for k, v in weights.items() if k.startswith(prefix + "/")}


def initial_weights() -> dict[str, np.ndarray]:
    torch.manual_seed(CFG["seed"])
    netG, netD = Generator(), Discriminator()  # noqa: N806 (the example's names)
    netG.apply(weights_init)
    netD.apply(weights_init)
    return {**{f"netG/{k}": v for k, v in export(netG).items()}, **{f"netD/{k}": v for k, v in export(netD).items()}}


def run(steps: int, init_weights: dict[str, np.ndarray], lr_scale: float = 1.0) -> dict:
    netG, netD = Generator(), Discriminator()  # noqa: N806
    restore(netG, pair(init_weights, "netG"))
    restore(netD, pair(init_weights, "netD"))
    criterion = nn.BCELoss()
    fixed_noise = torch.from_numpy(digits.normal((CFG["batch"], nz, 1, 1), 1, seed=22)[0])
    real_label, fake_label = 1, 0
    optimizerD = optim.Adam(netD.parameters(), lr=CFG["lr"] * lr_scale, betas=(CFG["beta1"], 0.999))  # noqa: N806
    optimizerG = optim.Adam(netG.parameters(), lr=CFG["lr"] * lr_scale, betas=(CFG["beta1"], 0.999))  # noqa: N806
    dataloader = digits.batches(CFG["size"], CFG["batch"], steps, norm=(0.5, 0.5))
    noises = digits.normal((CFG["batch"], nz, 1, 1), steps, seed=21)
    log = {name: [] for name in ("errD", "errG", "D_x", "D_G_z1", "D_G_z2")}
    samples = {}
    for i, data in enumerate(dataloader):
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        real_cpu = torch.from_numpy(data[0])
        batch_size = real_cpu.size(0)
        label = torch.full((batch_size,), real_label, dtype=real_cpu.dtype)
        output = netD(real_cpu)
        errD_real = criterion(output, label)  # noqa: N806
        errD_real.backward()
        D_x = output.mean().item()  # noqa: N806
        noise = torch.from_numpy(noises[i])
        fake = netG(noise)
        label.fill_(fake_label)
        output = netD(fake.detach())
        errD_fake = criterion(output, label)  # noqa: N806
        errD_fake.backward()
        D_G_z1 = output.mean().item()  # noqa: N806
        errD = errD_real + errD_fake  # noqa: N806
        optimizerD.step()
        # (2) Update G network: maximize log(D(G(z)))
        netG.zero_grad()
        label.fill_(real_label)
        output = netD(fake)
        errG = criterion(output, label)  # noqa: N806
        errG.backward()
        D_G_z2 = output.mean().item()  # noqa: N806
        optimizerG.step()
        for name, value in zip(log, (errD.item(), errG.item(), D_x, D_G_z1, D_G_z2)):
            log[name].append(value)
        if i % 100 == 0:
            fake = netG(fixed_noise)  # train mode, as the example: G's BN statistics update here too
            samples[f"fake_{i}"] = fake.detach().numpy()
    weights = {**{f"netG/{k}": v for k, v in export(netG).items()}, **{f"netD/{k}": v for k, v in export(netD).items()}}
    return {"losses": {k: np.array(v) for k, v in log.items()}, "weights": weights, "eval": samples}
