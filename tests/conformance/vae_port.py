"""pytorch/examples vae/main.py written once with Nebulae dock crafts; runs unchanged on both engines.

Port notes (catalogue gaps): no BCE on probabilities and no reduction='sum' in the catalogue, so
`loss_function` composes F.binary_cross_entropy(..., reduction='sum') from `Log` and `Sum` (without torch's
clamp of the logs at -100); `x.view(-1, 784)` is a `Reshape`; the noise eps is an argument (as in the plain
version); torch's default initialisation is not in the catalogue, so the initial weights are imported.
"""

from __future__ import annotations

import numpy as np

from nebulae.astro import dock
from tests.conformance import digits
from tests.conformance.settings import VAE as CFG


class VAE(dock.Craft):
    def __init__(self, scope: str = "VAE"):
        super().__init__(scope)
        self.fc1 = dock.Dense(784, CFG["hidden"])
        self.fc21 = dock.Dense(CFG["hidden"], CFG["latent"])
        self.fc22 = dock.Dense(CFG["hidden"], CFG["latent"])
        self.fc3 = dock.Dense(CFG["latent"], CFG["hidden"])
        self.fc4 = dock.Dense(CFG["hidden"], 784)
        self.relu, self.exp, self.sigmoid, self.view = dock.Relu(), dock.Exp(), dock.Sigm(), dock.Reshape()

    def encode(self, x):
        h1 = self.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar, eps):
        std = self.exp(0.5 * logvar)
        return mu + eps * std

    def decode(self, z):
        h3 = self.relu(self.fc3(z))
        return self.sigmoid(self.fc4(h3))

    def run(self, x, eps):
        mu, logvar = self.encode(self.view(x, (-1, 784)))
        z = self.reparameterize(mu, logvar, eps)
        return self.decode(z), mu, logvar


class Loss(dock.Craft):
    """Reconstruction (binary cross-entropy of probabilities) + KL divergence, summed over elements and batch."""

    def __init__(self, scope: str = "LOSS"):
        super().__init__(scope)
        self.log, self.exp, self.sum, self.view = dock.Log(), dock.Exp(), dock.Sum(), dock.Reshape()

    def run(self, recon_x, x, mu, logvar):
        x = self.view(x, (-1, 784))
        bce = self.sum((x - 1) * self.log(1 - recon_x) - x * self.log(recon_x))
        kld = -0.5 * self.sum(1 + logvar - mu**2 - self.exp(logvar))
        return bce + kld


class Train(dock.Craft):
    def __init__(self, model: VAE, scope: str = "TRAIN"):
        super().__init__(scope)
        self.model, self.loss_function = model, Loss()
        self.optz = dock.Adam(model, lr=CFG["lr"])

    def run(self, data, eps):
        with dock.Rudder() as rd:
            self.model.gear(rd)
            recon_batch, mu, logvar = self.model(data, eps)
            loss = self.loss_function(recon_batch, data, mu, logvar)
            self.optz(loss)
        return loss


class Test(dock.Craft):
    def __init__(self, model: VAE, scope: str = "TEST"):
        super().__init__(scope)
        self.model, self.loss_function = model, Loss()

    def run(self, data, eps):
        recon_batch, mu, logvar = self.model(data, eps)
        return self.loss_function(recon_batch, data, mu, logvar)


class Sample(dock.Craft):
    def __init__(self, model: VAE, scope: str = "SAMPLE"):
        super().__init__(scope)
        self.model, self.view = model, dock.Reshape()

    def run(self, z):
        return self.view(self.model.decode(z), (-1, 1, 28, 28))


def run(steps: int, init_weights: dict[str, np.ndarray]) -> dict:
    model = VAE()
    model.import_weights(init_weights)
    train, test, sample = Train(model), Test(model), Sample(model)
    eps = digits.vae_noise(steps, CFG["batch"], CFG["test"], CFG["samples"], CFG["latent"])
    batches = digits.batches(CFG["size"], CFG["batch"], steps)
    losses = [dock.shell(train(dock.coat(data), dock.coat(e))) for (data, _), e in zip(batches, eps["train"])]
    data = digits.held_out(CFG["size"], CFG["test"])[0]
    with dock.Nozzle():
        test_loss = dock.shell(test(dock.coat(data), dock.coat(eps["test"][0]))) / len(data)
        samples = dock.shell(sample(dock.coat(eps["sample"][0])))
    return {
        "losses": {"train": np.array(losses, np.float64)},
        "weights": model.export_weights(),
        "eval": {"test_loss": np.asarray(test_loss), "sample": samples},
    }
