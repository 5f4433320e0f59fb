"""The hyper-parameters each script runs with in the suite, read by its plain original and by its port.

Sizes are the originals' except where noted; the data are scikit-learn's digits (see `digits.py`).
"""

from __future__ import annotations

# pytorch/examples mnist/main.py: batch 64 -> 32 for speed. Adadelta(lr=1.0) as the example, in both the
# original and the port; StepLR(step_size=1, gamma=0.7) stepped once per epoch,
# an "epoch" being `epoch_len` batches here. Dropout p 0.25 / 0.5 -> 0 (masks cannot be shared across engines).
MNIST = {
    "size": 28,
    "norm": (0.1307, 0.3081),
    "batch": 32,
    "epoch_len": 3,
    "lr": 1.0,
    "gamma": 0.7,
    "p_drop": (0.0, 0.0),
    "test": 128,
}

# pytorch/examples vae/main.py: batch 128 -> 32; Adam(lr=1e-3). The reparameterisation noise eps is drawn
# once with NumPy and fed to every run (the original draws torch.randn_like inside forward).
VAE = {"size": 28, "batch": 32, "lr": 1e-3, "latent": 20, "hidden": 400, "test": 64, "samples": 16}

# pytorch/examples dcgan/main.py (mnist branch: nc=1, Normalize(0.5, 0.5)): widths shrunk (ngf = ndf = 8,
# nz = 16, batch 16); image size 64 and every layer kept. Adam(2e-4, betas (0.5, 0.999)), BCE. --manualSeed 1
# (the example draws a random one; the DCGAN tutorial's 999 gives a trajectory that a 1e-7 jitter of the
# initial weights already moves by 1e-3 within 4 steps; seed 1: its losses move by < 2e-7, its weights by < 1e-6).
DCGAN = {"size": 64, "batch": 16, "nz": 16, "ngf": 8, "ndf": 8, "nc": 1, "lr": 2e-4, "beta1": 0.5, "seed": 1}

# Flax NNX MNIST tutorial: batch 32, optax.adamw(0.005, 0.9) (its weight_decay default 1e-4 spelled out in the
# port: Nebulae's AdamW defaults to wd=0), CNN(rngs=nnx.Rngs(0)).
FLAX_MNIST = {"size": 28, "norm": (0.1307, 0.3081), "batch": 32, "lr": 0.005, "momentum": 0.9, "wd": 1e-4, "test": 128}
