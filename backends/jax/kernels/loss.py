"""Loss kernels on JAX in float32, with torch's reductions, ignore_index and BCE clamping and gradient."""

import jax
import jax.numpy as jnp

from ..checks import check as value_check  # noqa: F401 (a kernel: the value checks of Law.CHECKS)
from .base import value

LOG_FLOOR = -100.0  # torch's binary_cross_entropy clamps each log here
BCE_EPS = 1e-12  # and divides its gradient by max(p (1 - p), this)


def _f32(a):
    return a.astype(jnp.float32)


def _reduced(loss, reduction):
    if reduction == "mean":
        return jnp.mean(loss)
    return jnp.sum(loss) if reduction == "sum" else loss


def first_true(mask):
    return jnp.argmax(mask.reshape(-1))


def nan_where(value, bad):
    return value * jnp.where(bad, jnp.nan, 1.0)


def class_labels(y, bad, ignore_index):
    return jnp.where(bad, ignore_index, y.astype(jnp.int32))


def mse(x, y, reduction):
    return _reduced(jnp.square(_f32(x) - _f32(y)), reduction)


def l1(x, y, reduction):
    d = _f32(x) - _f32(y)
    return _reduced(d * jnp.sign(d), reduction)  # |d| with gradient sign(d): 0 at ties, as torch (jnp.abs has 1)


def huber(x, y, delta, reduction):
    d = jnp.abs(_f32(x) - _f32(y))
    return _reduced(jnp.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta)), reduction)


def charbonnier(x, y, eps, reduction):
    return _reduced(jnp.sqrt(jnp.square(_f32(x) - _f32(y)) + eps), reduction)


def bce_with_logits(x, y, reduction):
    x, y = _f32(x), _f32(y)
    return _reduced((1.0 - y) * x - jax.nn.log_sigmoid(x), reduction)


def _clamped_logs(p):
    return jnp.maximum(jnp.log(p), LOG_FLOOR), jnp.maximum(jnp.log(1.0 - p), LOG_FLOOR)


@jax.custom_vjp
def _bce(p, y):
    log_p, log_q = _clamped_logs(p)
    return -(y * log_p + (1.0 - y) * log_q)


def _bce_fwd(p, y):
    return _bce(p, y), (p, y)


def _bce_bwd(saved, g):
    p, y = saved
    log_p, log_q = _clamped_logs(p)
    return g * (p - y) / jnp.maximum(p * (1.0 - p), BCE_EPS), g * (log_q - log_p)


_bce.defvjp(_bce_fwd, _bce_bwd)


def bce(p, y, weight, reduction):
    loss = _bce(_f32(p), _f32(y))
    if weight is not None:
        loss = loss * value(weight, loss)
    return _reduced(loss, reduction)


def nll(logp, y, ignore_index, reduction):
    keep = y != ignore_index
    picked = jnp.take_along_axis(_f32(logp), jnp.expand_dims(jnp.where(keep, y, 0), 1), axis=1).squeeze(1)
    loss = -jnp.where(keep, picked, 0.0)
    if reduction == "mean":  # over the labels kept: NaN (with a zero gradient) when none is
        return jnp.sum(loss) / jnp.sum(keep)
    return _reduced(loss, reduction)


def cross_entropy(x, y, ignore_index, reduction):
    return nll(jax.nn.log_softmax(_f32(x), axis=1), y, ignore_index, reduction)


def soft_cross_entropy(x, y, reduction):
    return _reduced(-jnp.sum(_f32(y) * jax.nn.log_softmax(_f32(x), axis=1), axis=1), reduction)


def ohem(rows, valid, shape, k_he, top, np_ratio, thr, keep_pos):
    rows = _f32(rows)
    valid = jnp.ones(rows.shape, bool) if valid is None else jnp.broadcast_to(valid, shape).reshape(rows.shape)
    positive = valid & (rows < thr)
    npos = positive.sum(1).astype(jnp.float32)
    nvalid = valid.sum(1).astype(jnp.float32)
    k = jnp.minimum(jnp.maximum(jnp.minimum(jnp.floor(npos * np_ratio), nvalid - npos), k_he), nvalid)
    hardest = jax.lax.top_k(jnp.where(valid, rows, -jnp.inf), top)[0]
    chosen = jnp.arange(top)[None, :] < k[:, None]
    if keep_pos:
        chosen = chosen & (hardest >= thr)
    total = jnp.where(chosen, hardest, 0.0).sum(1)
    count = chosen.sum(1).astype(jnp.float32)
    if keep_pos:  # every positive is averaged in too
        total = total + jnp.where(positive, rows, 0.0).sum(1)
        count = count + npos
    used = count > 0
    per_row = jnp.where(used, total / jnp.maximum(count, 1.0), 0.0)
    return per_row.sum() / jnp.maximum(used.sum().astype(jnp.float32), 1.0)
