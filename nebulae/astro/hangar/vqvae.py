"""VQ-VAE (van den Oord et al.): conv encoder, nearest-codebook vector quantiser, conv decoder.

The quantiser picks the nearest of `ncodes` codebook vectors (a trainable `Embed` table) for each
spatial position, passes gradients straight through to the encoder (z + stop_grad(q - z)), and
returns the codebook loss |q - sg(z)|^2 plus `beta` times the commitment loss |z - sg(q)|^2.
Inputs are downsampled 4x, so H and W must be multiples of 4.
"""

from __future__ import annotations

from .shapes import check_input, chw


class Residual:
    """x + conv1x1(relu(conv3x3(relu(x))))."""

    def __init__(self, chs: int, res_chs: int, scope: str = "RESIDUAL"):
        super().__init__(scope)
        dock = self.dock
        self.relu = dock.Relu()
        self.conv1 = dock.Conv(chs, res_chs, (3, 3), 1, 1)
        self.conv2 = dock.Conv(res_chs, chs, (1, 1))

    def run(self, x):
        return x + self.conv2(self.relu(self.conv1(self.relu(x))))


class Quantiser:
    """(B, D, h, w) -> (straight-through quantised (B, D, h, w), vq loss, codes (B, h, w))."""

    def __init__(self, ncodes: int, code_dim: int, beta: float = 0.25, scope: str = "QUANTISER"):
        super().__init__(scope)
        dock = self.dock
        self.beta = float(beta)
        self.codebook = dock.Embed(ncodes, code_dim, w_init=dock.Uniform(-1.0 / ncodes, 1.0 / ncodes))
        self.sg, self.sum, self.mean = dock.StopGrad(), dock.Sum(), dock.Mean()
        self.argmin, self.dot = dock.Argmin(), dock.Dot()
        self.permute, self.reshape = dock.Permute(), dock.Reshape()

    def run(self, z):
        b, d, h, w = z.shape
        flat = self.reshape(self.permute(z, (0, 2, 3, 1)), (b * h * w, d))
        book = self.codebook.weights()
        dist = (
            self.sum(flat * flat, 1, reduce=False)
            - 2.0 * self.dot(flat, self.permute(book, (1, 0)))
            + self.sum(book * book, 1)
        )
        idx = self.argmin(dist, 1)
        q = self.codebook(idx)
        loss = self.mean((q - self.sg(flat)) ** 2) + self.beta * self.mean((flat - self.sg(q)) ** 2)
        st = flat + self.sg(q - flat)
        return self.permute(self.reshape(st, (b, h, w, d)), (0, 3, 1, 2)), loss, self.reshape(idx, (b, h, w))


class VQVAE:
    """VQ-VAE over (B, C, H, W) inputs; `run(x)` gives (reconstruction, vq loss, codes (B, H/4, W/4)).

    Args:
        in_shape: (C, H, W) of the inputs; H and W multiples of 4.
        hidden_dim: the channels of the encoder and decoder.
        ncodes: the number of codebook vectors.
        code_dim: the size of each codebook vector.
        beta: the weight of the commitment loss.
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(
        self,
        in_shape=(3, 32, 32),
        hidden_dim: int = 64,
        ncodes: int = 128,
        code_dim: int = 64,
        beta: float = 0.25,
        scope: str = "VQVAE",
    ):
        super().__init__(scope)
        dock = self.dock
        c = chw(in_shape, "VQVAE", 4)[0]
        self.in_chs, half, res = c, max(hidden_dim // 2, 1), max(hidden_dim // 4, 1)
        self.encoder = [
            dock.Conv(c, half, (4, 4), 2, 1),
            dock.Relu(),
            dock.Conv(half, hidden_dim, (4, 4), 2, 1),
            dock.Relu(),
            dock.Conv(hidden_dim, hidden_dim, (3, 3), 1, 1),
            self.hangar.Residual(hidden_dim, res),
            self.hangar.Residual(hidden_dim, res),
            dock.Relu(),
            dock.Conv(hidden_dim, code_dim, (1, 1)),
        ]
        self.quantiser = self.hangar.Quantiser(ncodes, code_dim, beta)
        self.decoder = [
            dock.Conv(code_dim, hidden_dim, (3, 3), 1, 1),
            self.hangar.Residual(hidden_dim, res),
            self.hangar.Residual(hidden_dim, res),
            dock.Relu(),
            dock.TransConv(hidden_dim, half, (4, 4), 2, 1),
            dock.Relu(),
            dock.TransConv(half, c, (4, 4), 2, 1),
        ]

    def run(self, x):
        check_input(x, self.in_chs, 4, "VQVAE")
        for layer in self.encoder:
            x = layer(x)
        x, loss, codes = self.quantiser(x)
        for layer in self.decoder:
            x = layer(x)
        return x, loss, codes


CRAFTS = ["Residual", "Quantiser", "VQVAE"]
