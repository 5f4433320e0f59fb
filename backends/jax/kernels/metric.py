"""Metric kernels on JAX: accuracy, PSNR, and SSIM by dm-pix."""

import dm_pix
import jax.numpy as jnp

from .base import value


def _fraction(hits):
    return hits.astype(jnp.float32).mean()


def accuracy(x, y, ignore_index):
    keep = y != ignore_index
    hits = ((jnp.argmax(x, axis=1) == y) & keep).sum().astype(jnp.float32)
    return hits / keep.sum().astype(jnp.float32)


def one_hot_accuracy(x, y):
    return _fraction(jnp.argmax(x, axis=1) == jnp.argmax(y, axis=1))


def multi_label_accuracy(p, y):
    return _fraction(jnp.all(jnp.round(p.astype(jnp.float32)) == y.astype(jnp.float32), axis=1))


def psnr(x, y, peak, eps):
    d = x.astype(jnp.float32) - y.astype(jnp.float32)
    mse = jnp.square(d).reshape(d.shape[0], -1).mean(1)
    return (10.0 * jnp.log10(peak**2 / (mse + eps))).mean()


def ssim(x, y, window, sigma, peak, k1, k2):
    per_image = dm_pix.ssim(
        jnp.moveaxis(x.astype(jnp.float32), 1, -1),
        jnp.moveaxis(y.astype(jnp.float32), 1, -1),
        max_val=peak,
        filter_size=value(window).shape[0],
        filter_sigma=sigma,
        k1=k1,
        k2=k2,
    )
    return per_image.mean()
