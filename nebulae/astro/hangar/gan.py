"""DCGAN (Radford et al.): a transposed-conv generator and a strided-conv discriminator.

The layer layout and parameter names follow the PyTorch DCGAN tutorial (`main/0/weight`, bias-free
convolutions): for 3x64x64 images, latent 100 and 64 base channels, 3,576,704 generator and
2,765,568 discriminator parameters. Other sizes: H and W multiples of 16 (the first and last layers
span H/16 x W/16).
"""

from __future__ import annotations

import functools

from .shapes import chw


@functools.cache
def build(dock) -> dict:
    """The DCGAN crafts written against `dock`."""

    def up(in_chs: int, out_chs: int, kernel=(4, 4), stride: int = 2, padding: int = 1):
        return dock.TransConv(in_chs, out_chs, kernel, stride, padding, b_init=dock.Void())

    def down(in_chs: int, out_chs: int, kernel=(4, 4), stride: int = 2, padding: int = 1):
        return dock.Conv(in_chs, out_chs, kernel, stride, padding, b_init=dock.Void())

    class Generator(dock.Craft):
        """(B, latent_dim) latents -> (B, C, H, W) images in [-1, 1]: TransConv + BN + ReLU stages, tanh."""

        def __init__(self, in_shape, latent_dim: int, base_chs: int, scope: str = "GENERATOR"):
            super().__init__(scope)
            c, h, w = chw(in_shape, "DCGAN", 16)
            self.latent_dim = latent_dim
            chs = [base_chs * 8, base_chs * 4, base_chs * 2, base_chs]
            layers = [up(latent_dim, chs[0], (h // 16, w // 16), 1, 0), dock.BN(chs[0]), dock.Relu()]
            for a, b in zip(chs, chs[1:]):
                layers += [up(a, b), dock.BN(b), dock.Relu()]
            self.main = [*layers, up(base_chs, c), dock.Tanh()]
            self.reshape = dock.Reshape()

        def run(self, z):
            if tuple(z.shape[1:]) != (self.latent_dim,):
                raise ValueError(f"DCGAN generator takes (B, {self.latent_dim}) latents, got shape {tuple(z.shape)}")
            y = self.reshape(z, (z.shape[0], self.latent_dim, 1, 1))
            for layer in self.main:
                y = layer(y)
            return y

    class Discriminator(dock.Craft):
        """(B, C, H, W) images -> (B, 1) logits: strided Conv + BN + LeakyReLU(0.2) stages."""

        def __init__(self, in_shape, base_chs: int, scope: str = "DISCRIMINATOR"):
            super().__init__(scope)
            c, h, w = chw(in_shape, "DCGAN", 16)
            self.in_shape = (c, h, w)
            chs = [base_chs, base_chs * 2, base_chs * 4, base_chs * 8]
            layers = [down(c, chs[0]), dock.LRelu(0.2)]
            for a, b in zip(chs, chs[1:]):
                layers += [down(a, b), dock.BN(b), dock.LRelu(0.2)]
            self.main = [*layers, down(chs[-1], 1, (h // 16, w // 16), 1, 0)]
            self.reshape = dock.Reshape()

        def run(self, x):
            if tuple(x.shape[1:]) != self.in_shape:
                raise ValueError(f"DCGAN discriminator takes (B, *{self.in_shape}) images, got shape {tuple(x.shape)}")
            for layer in self.main:
                x = layer(x)
            return self.reshape(x, (x.shape[0], 1))

    class DCGAN(dock.Craft):
        """Holds `.generator` and `.discriminator` (train them with one step craft each); calling it samples images."""

        def __init__(self, in_shape=(3, 64, 64), latent_dim: int = 100, base_chs: int = 64, scope: str = "DCGAN"):
            super().__init__(scope)
            self.generator = Generator(in_shape, latent_dim, base_chs)
            self.discriminator = Discriminator(in_shape, base_chs)

        def run(self, z):
            return self.generator(z)

    return {"DCGAN": DCGAN}
