"""VAE (Kingma & Welling): the MLP encoder/decoder of the PyTorch VAE example (652,824 parameters for
1x28x28, 400 hidden units, 20 latents), reparameterised sampling, decoder logits.
"""

from __future__ import annotations

from .shapes import chw


class VAE:
    """MLP VAE over (B, C, H, W) inputs; `run(x, eps=None)` returns (reconstruction logits, mu, logvar).

    z = mu + exp(logvar / 2) * eps, with `eps` as given (shape (B, latent_dim)); without it, eps is drawn
    from the craft's `Gauss` stream in train mode and z = mu in eval mode. The logits (B, C, H, W) go
    with a sigmoid cross-entropy (`dock.SigmXE`) against inputs in [0, 1].

    Args:
        in_shape: (C, H, W) of the inputs.
        hidden_dim: the hidden units of the encoder and decoder.
        latent_dim: the size of the latent code z.
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, in_shape=(1, 28, 28), hidden_dim: int = 400, latent_dim: int = 20, scope: str = "VAE"):
        super().__init__(scope)
        dock = self.dock
        self.in_shape = chw(in_shape, "VAE")
        self.latent_dim = latent_dim
        size = self.in_shape[0] * self.in_shape[1] * self.in_shape[2]
        self.fc1 = dock.Dense(size, hidden_dim)
        self.fc21 = dock.Dense(hidden_dim, latent_dim)
        self.fc22 = dock.Dense(hidden_dim, latent_dim)
        self.fc3 = dock.Dense(latent_dim, hidden_dim)
        self.fc4 = dock.Dense(hidden_dim, size)
        self.relu, self.exp, self.reshape = dock.Relu(), dock.Exp(), dock.Reshape()
        self.noise = dock.Gauss()

    def encode(self, x):
        """(mu, logvar) of q(z | x), each (B, latent_dim)."""
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"VAE takes (B, *{self.in_shape}) inputs, got shape {tuple(x.shape)}")
        h = self.relu(self.fc1(self.reshape(x, (x.shape[0], -1))))
        return self.fc21(h), self.fc22(h)

    def decode(self, z):
        """Reconstruction logits (B, C, H, W) of latents z (B, latent_dim)."""
        return self.reshape(self.fc4(self.relu(self.fc3(z))), (z.shape[0], *self.in_shape))

    def run(self, x, eps=None):
        mu, logvar = self.encode(x)
        if eps is None and self.is_training():
            eps = self.noise(mu)
        z = mu if eps is None else mu + self.exp(0.5 * logvar) * eps
        return self.decode(z), mu, logvar


CRAFTS = ["VAE"]
