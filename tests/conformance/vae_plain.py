"""pytorch/examples vae/main.py in plain torch, on the digits (see settings.VAE for what differs and why).

VAE, loss_function, train() and test() follow the example; `reparameterize` takes the noise `eps` as an
argument (the example draws torch.randn_like inside it) so that every run uses the same draws.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn, optim
from torch.nn import functional as F

from tests.conformance import digits
from tests.conformance.mnist_plain import export, restore
from tests.conformance.settings import VAE as CFG

ENGINE = "pytorch"


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, CFG["hidden"])
        self.fc21 = nn.Linear(CFG["hidden"], CFG["latent"])
        self.fc22 = nn.Linear(CFG["hidden"], CFG["latent"])
        self.fc3 = nn.Linear(CFG["latent"], CFG["hidden"])
        self.fc4 = nn.Linear(CFG["hidden"], 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar, eps):
        std = torch.exp(0.5 * logvar)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x, eps):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar, eps)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    """Reconstruction + KL divergence, summed over all elements and the batch."""
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")  # noqa: N806 (the example's names)
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())  # noqa: N806
    return BCE + KLD


def initial_weights() -> dict[str, np.ndarray]:
    torch.manual_seed(1)
    return export(VAE())


def run(steps: int, init_weights: dict[str, np.ndarray], lr_scale: float = 1.0) -> dict:
    model = VAE()
    restore(model, init_weights)
    optimizer = optim.Adam(model.parameters(), lr=CFG["lr"] * lr_scale)
    eps = digits.vae_noise(steps, CFG["batch"], CFG["test"], CFG["samples"], CFG["latent"])
    losses = []
    model.train()
    for (data, _), e in zip(digits.batches(CFG["size"], CFG["batch"], steps), eps["train"]):
        data = torch.from_numpy(data)
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data, torch.from_numpy(e))
        loss = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        losses.append(loss.item())
        optimizer.step()
    model.eval()
    with torch.no_grad():
        data = torch.from_numpy(digits.held_out(CFG["size"], CFG["test"])[0])
        recon_batch, mu, logvar = model(data, torch.from_numpy(eps["test"][0]))
        test_loss = loss_function(recon_batch, data, mu, logvar).item() / len(data)
        sample = model.decode(torch.from_numpy(eps["sample"][0])).view(-1, 1, 28, 28)
    return {
        "losses": {"train": np.array(losses)},
        "weights": export(model),
        "eval": {"test_loss": np.asarray(test_loss), "sample": sample.numpy()},
    }
