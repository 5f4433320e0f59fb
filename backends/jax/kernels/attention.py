"""Attention kernels on JAX: torch.nn.MultiheadAttention's forward, torch's head layout (N * heads, len, E / heads)."""

import math

import jax
import jax.numpy as jnp
from flax import nnx

from nebulae.astro import init as _init

from .base import value


class RngState(nnx.Variable):
    """A random stream's key data and counter (checkpointed, not exported with the weights)."""


def _additive(mask, dtype):
    """A boolean mask (True = not allowed) as -inf/0 scores; a float mask is added as it is."""
    if jnp.issubdtype(mask.dtype, jnp.bool_):
        return jnp.where(mask, -jnp.inf, 0.0).astype(dtype)
    return mask.astype(dtype)


def _heads(t, n, nheads):
    return t.reshape(t.shape[0], n * nheads, -1).transpose(1, 0, 2)


def attention(
    q, k, v, in_weights, in_bias, out_weight, out_bias, nheads, pad_mask, attn_mask, p_drop, training, stream
):
    E, H, dtype = q.shape[-1], nheads, q.dtype
    (L, N, _), S = q.shape, k.shape[0]
    if len(in_weights) == 1:
        w = value(in_weights[0], q)
        wq, wk, wv = w[:E], w[E : 2 * E], w[2 * E :]
    else:
        wq, wk, wv = (value(w, q) for w in in_weights)
    b = value(in_bias, q)
    qh = _heads(q @ wq.T + b[:E], N, H)
    kh = _heads(k @ wk.T + b[E : 2 * E], N, H)
    vh = _heads(v @ wv.T + b[2 * E :], N, H)
    scores = (qh * math.sqrt(1.0 / (E // H))) @ kh.transpose(0, 2, 1)
    if attn_mask is not None:
        scores = scores + _additive(attn_mask, dtype)
    if pad_mask is not None:
        pad = jnp.broadcast_to(_additive(pad_mask, dtype)[:, None, None, :], (N, H, 1, S))
        scores = scores + pad.reshape(N * H, 1, S)
    weights = jax.nn.softmax(scores, axis=-1)
    if p_drop > 0.0 and training:
        key, count = stream
        n = count.get_value()
        count.set_value(n + 1)
        rng = jax.random.fold_in(jax.random.wrap_key_data(key.get_value()), n)
        keep = jax.random.bernoulli(rng, 1.0 - p_drop, weights.shape)
        weights = jnp.where(keep, weights / (1.0 - p_drop), jnp.zeros_like(weights))
    out = (weights @ vh).transpose(1, 0, 2).reshape(L, N, E)
    y = out @ value(out_weight, out).T + value(out_bias, out)
    return y, weights.reshape(N, H, L, S).mean(axis=1)


def attention_stream():
    key = jax.random.key_data(jax.random.key(_init.draw_seed()))
    return RngState(key), RngState(jnp.zeros((), jnp.uint32))
