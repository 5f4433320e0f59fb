"""Normalisation kernels on JAX: statistics in float32 with the biased variance, as torch, cast back to x's dtype."""

import jax
import jax.numpy as jnp

from ..layout import axes_of, to_neutral
from .base import value


def batch_norm(x, weight, bias, mean, var, count, mmnt, eps, training, update, synced):
    # `synced` needs nothing here: a compiled step's batch statistics already span the global batch
    axes = (0, *range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    xf = x.astype(jnp.float32)
    if training:
        mu = xf.mean(axes)
        sigma2 = jnp.mean(jnp.square(xf - mu.reshape(shape)), axes)
    else:
        mu, sigma2 = mean.get_value(), var.get_value()
    if update:
        n = x.size // x.shape[1]
        mean.set_value(mmnt * mean.get_value() + (1 - mmnt) * mu)
        var.set_value(mmnt * var.get_value() + (1 - mmnt) * sigma2 * (n / max(n - 1, 1)))
        count.set_value(count.get_value() + 1)
    y = (xf - mu.reshape(shape)) * jnp.reciprocal(jnp.sqrt(sigma2 + eps)).reshape(shape)
    return _affine(y, weight, bias, shape).astype(x.dtype)


def _standardise(xf, axes, eps):
    """(x - mean) / sqrt(var + eps) over `axes` with the biased variance, as torch computes it."""
    mu = xf.mean(axes, keepdims=True)
    sigma2 = jnp.mean(jnp.square(xf - mu), axes, keepdims=True)
    return (xf - mu) * jax.lax.rsqrt(sigma2 + eps)


def _affine(y, weight, bias, shape):
    if weight is not None:
        y = y * value(weight).reshape(shape)
    if bias is not None:
        y = y + value(bias).reshape(shape)
    return y


def _channels(x):
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def instance_norm(x, weight, bias, eps):
    y = _standardise(x.astype(jnp.float32), tuple(range(2, x.ndim)), eps)
    return _affine(y, weight, bias, _channels(x)).astype(x.dtype)


def layer_norm(x, shape, weight, bias, eps):
    y = _standardise(x.astype(jnp.float32), tuple(range(x.ndim - len(shape), x.ndim)), eps)
    return _affine(y, weight, bias, shape).astype(x.dtype)


def group_norm(x, ngroup, weight, bias, eps):
    grouped = x.astype(jnp.float32).reshape((x.shape[0], ngroup, -1))
    y = _standardise(grouped, (2,), eps).reshape(x.shape)
    return _affine(y, weight, bias, _channels(x)).astype(x.dtype)


def _unit(a, eps):
    """a / max(||a||, eps), as torch.nn.functional.normalize."""
    return a / jnp.maximum(jnp.linalg.norm(a), eps)


def spectral_weight(weight, u, v, mat_dim, niters, eps, training):
    w = value(weight)
    if w.ndim == 1:
        return _unit(w, eps)
    neutral = to_neutral(w, axes_of(weight))  # u and v are of the neutral (torch) matrix
    mat = jnp.moveaxis(neutral, mat_dim, 0).reshape(neutral.shape[mat_dim], -1)
    uu, vv = u.get_value(), v.get_value()
    if training:
        fixed = jax.lax.stop_gradient(mat)
        for _ in range(niters):
            uu = _unit(fixed @ vv, eps)
            vv = _unit(fixed.T @ uu, eps)
        u.set_value(uu)
        v.set_value(vv)
    return w / jnp.dot(uu, mat @ vv)


def call_with(craft, pname, weight, args, kwargs):
    variable = getattr(craft, pname)
    original = variable.get_value()
    variable.set_value(weight)
    try:
        return craft(*args, **kwargs)
    finally:
        variable.set_value(original)
