"""Small local data for the conformance scripts: scikit-learn's 8x8 digits, upsampled (NumPy only).

Every process that calls these functions with the same arguments gets bit-identical arrays, so the
plain originals and the ports on both engines train on the same batches and the same noise.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) bilinear weights, half-pixel centres (as F.interpolate with align_corners=False)."""
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), lo] += 1 - frac
    m[np.arange(n_out), hi] += frac
    return m


@functools.cache
def _scans() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 8, 8) grey levels 0..16 and labels: sklearn's digits.csv.gz read directly (sklearn's import
    costs a second per interpreter); load_digits() where the file is not found."""
    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz" if spec else None
    if path is None or not path.is_file():
        from sklearn.datasets import load_digits

        data = load_digits()
        return data.images, data.target
    table = np.loadtxt(path, delimiter=",")
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)


@functools.cache
def images(size: int) -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as (N, 1, size, size) float32 in [0, 1] (bilinear upsampling) and (N,) int64 labels."""
    scans, labels = _scans()
    m = _resize_matrix(8, size)
    x = np.einsum("ij,njk,lk->nil", m, scans / 16.0, m)
    return np.clip(x, 0.0, 1.0).astype(np.float32)[:, None], labels.astype(np.int64)


HELD_OUT = 256  # the last digits: never in a training batch


def normalized(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    """(x - mean) / std in float32, as torchvision's transforms.Normalize((mean,), (std,))."""
    return ((x - np.float32(mean)) / np.float32(std)).astype(np.float32)


def batches(
    size: int, batch: int, steps: int, seed: int = 0, norm: tuple[float, float] = (0.0, 1.0)
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`steps` shuffled (images, labels) batches without repetition, drawn from all but the held-out digits.

    `norm` = (mean, std) normalises the images (torchvision's Normalize); the default leaves them in [0, 1].
    """
    x, y = images(size)
    order = np.random.default_rng(seed).permutation(len(x) - HELD_OUT)[: batch * steps].reshape(steps, batch)
    return [(normalized(x[i], *norm), y[i]) for i in order]


def held_out(size: int, n: int = HELD_OUT, norm: tuple[float, float] = (0.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """The first `n` of the held-out digits (normalised as `batches` does), for an evaluation pass."""
    if not 0 < n <= HELD_OUT:
        raise ValueError(f"held_out: n must be in [1, {HELD_OUT}], got {n}")
    x, y = images(size)
    return normalized(x[-HELD_OUT:][:n], *norm), y[-HELD_OUT:][:n]


def normal(shape: tuple[int, ...], steps: int, seed: int) -> list[np.ndarray]:
    """`steps` standard-normal float32 arrays of `shape` (the noise a script would draw with randn)."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(steps)]


def vae_noise(steps: int, batch: int, test: int, samples: int, latent: int) -> dict[str, list[np.ndarray]]:
    """The VAE's reparameterisation noise: eps of every training step, of the test pass, and decoder samples."""
    return {
        "train": normal((batch, latent), steps, seed=11),
        "test": normal((test, latent), 1, seed=12),
        "sample": normal((samples, latent), 1, seed=13),
    }
