"""DCGAN (Radford et al.): a transposed-conv generator and a strided-conv discriminator.

The layer layout and parameter names follow the PyTorch DCGAN tutorial (`main/0/weight`, bias-free
convolutions): for 3x64x64 images, latent 100 and 64 base channels, 3,576,704 generator and
2,765,568 discriminator parameters. Other sizes: H and W multiples of 16 (the first and last layers
span H/16 x W/16).
"""

from __future__ import annotations

from .shapes import chw


def up(dock, in_chs: int, out_chs: int, kernel=(4, 4), stride: int = 2, padding: int = 1):
    return dock.TransConv(in_chs, out_chs, kernel, stride, padding, b_init=dock.Void())


def down(dock, in_chs: int, out_chs: int, kernel=(4, 4), stride: int = 2, padding: int = 1):
    return dock.Conv(in_chs, out_chs, kernel, stride, padding, b_init=dock.Void())


class Generator:
    """(B, latent_dim) latents -> (B, C, H, W) images in [-1, 1]: TransConv + BN + ReLU stages, tanh."""

    def __init__(self, in_shape, latent_dim: int, base_chs: int, scope: str = "GENERATOR"):
        super().__init__(scope)
        dock = self.dock
        c, h, w = chw(in_shape, "DCGAN", 16)
        self.latent_dim = latent_dim
        chs = [base_chs * 8, base_chs * 4, base_chs * 2, base_chs]
        layers = [up(dock, latent_dim, chs[0], (h // 16, w // 16), 1, 0), dock.BN(chs[0]), dock.Relu()]
        for a, b in zip(chs, chs[1:]):
            layers += [up(dock, a, b), dock.BN(b), dock.Relu()]
        self.main = [*layers, up(dock, base_chs, c), dock.Tanh()]
        self.reshape = dock.Reshape()

    def run(self, z):
        if tuple(z.shape[1:]) != (self.latent_dim,):
            raise ValueError(f"DCGAN generator takes (B, {self.latent_dim}) latents, got shape {tuple(z.shape)}")
        y = self.reshape(z, (z.shape[0], self.latent_dim, 1, 1))
        for layer in self.main:
            y = layer(y)
        return y


class Discriminator:
    """(B, C, H, W) images -> (B, 1) logits: strided Conv + BN + LeakyReLU(0.2) stages."""

    def __init__(self, in_shape, base_chs: int, scope: str = "DISCRIMINATOR"):
        super().__init__(scope)
        dock = self.dock
        c, h, w = chw(in_shape, "DCGAN", 16)
        self.in_shape = (c, h, w)
        chs = [base_chs, base_chs * 2, base_chs * 4, base_chs * 8]
        layers = [down(dock, c, chs[0]), dock.LRelu(0.2)]
        for a, b in zip(chs, chs[1:]):
            layers += [down(dock, a, b), dock.BN(b), dock.LRelu(0.2)]
        self.main = [*layers, down(dock, chs[-1], 1, (h // 16, w // 16), 1, 0)]
        self.reshape = dock.Reshape()

    def run(self, x):
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"DCGAN discriminator takes (B, *{self.in_shape}) images, got shape {tuple(x.shape)}")
        for layer in self.main:
            x = layer(x)
        return self.reshape(x, (x.shape[0], 1))


class DCGAN:
    """Holds `.generator` and `.discriminator` (train them with one step craft each); calling it samples images.

    Args:
        in_shape: (C, H, W) of the images; H and W multiples of 16.
        latent_dim: the size of the generator's input latents (nz in the PyTorch example).
        base_chs: the base width of both networks (ngf = ndf = 64 in the PyTorch example).
        scope: the name of this craft in checkpoints and summaries.
        g_chs: the generator's base width (ngf), when it differs from `base_chs`.
        d_chs: the discriminator's base width (ndf), when it differs from `base_chs`.
    """

    def __init__(
        self,
        in_shape=(3, 64, 64),
        latent_dim: int = 100,
        base_chs: int = 64,
        scope: str = "DCGAN",
        *,
        g_chs: int | None = None,
        d_chs: int | None = None,
    ):
        super().__init__(scope)
        self.g_chs = base_chs if g_chs is None else int(g_chs)
        self.d_chs = base_chs if d_chs is None else int(d_chs)
        if min(self.g_chs, self.d_chs, int(latent_dim)) < 1:
            raise ValueError(
                f"DCGAN needs positive widths and latent_dim, got g_chs={self.g_chs}, d_chs={self.d_chs},"
                f" latent_dim={latent_dim}"
            )
        self.generator = self.hangar.Generator(in_shape, latent_dim, self.g_chs)
        self.discriminator = self.hangar.Discriminator(in_shape, self.d_chs)

    def run(self, z):
        return self.generator(z)


CRAFTS = ["Generator", "Discriminator", "DCGAN"]
