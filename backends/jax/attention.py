"""Attention crafts on JAX: multi-head attention, sequence-first (L, N, E), as torch.nn.MultiheadAttention."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from nebulae.astro import init as _init
from nebulae.astro.args import check_attention_inputs as _check_inputs
from nebulae.astro.args import check_float_input

from .craft import Craft
from .dropout import draw, new_stream
from .legacy import Dense, parameter

__all__ = ["MHAttn"]


def _additive(mask, dtype):
    """A boolean mask (True = not allowed) as -inf/0 scores; a float mask is added as it is."""
    if jnp.issubdtype(mask.dtype, jnp.bool_):
        return jnp.where(mask, -jnp.inf, 0.0).astype(dtype)
    return mask.astype(dtype)


def _heads(t, n: int, nheads: int):
    """(len, N, E) -> (N * nheads, len, E / nheads), torch's head layout."""
    return t.reshape(t.shape[0], n * nheads, -1).transpose(1, 0, 2)


class MHAttn(Craft):
    """Multi-head attention as torch.nn.MultiheadAttention (embed dim q_chs, kdim k_chs, vdim v_chs).

    Call `(q, k, v, pad_mask=None, attn_mask=None)` on sequence-first q (L, N, q_chs), k (S, N, k_chs),
    v (S, N, v_chs); returns `(y, weights)`: y (L, N, q_chs) and the attention weights averaged over
    heads (N, L, S). `pad_mask` (N, S) bool, True = ignore that key; `attn_mask` (L, S) or
    (N * nheads, L, S), bool (True = not allowed) or float (added to the scores). Dropout `p_drop`
    acts on the attention weights in train mode. Parameters: `in_proj_weight` when k_chs == v_chs ==
    q_chs, else `q_proj_weight`, `k_proj_weight`, `v_proj_weight` (Xavier-uniform as torch);
    `in_proj_bias` (zeros); `out_proj/weight`, `out_proj/bias` (a Dense).
    """

    def __init__(self, nheads: int, q_chs: int, k_chs: int, v_chs: int, p_drop: float = 0.0, scope: str = "MHATTN"):
        super().__init__(scope)
        if nheads < 1 or q_chs % nheads:
            raise ValueError(f"MHAttn: q_chs {q_chs} must divide into nheads {nheads} heads")
        if not 0.0 <= p_drop < 1.0:
            raise ValueError(f"MHAttn: p_drop must be in [0, 1), got {p_drop}")
        self.nheads, self.q_chs, self.k_chs, self.v_chs, self.p_drop = nheads, q_chs, k_chs, v_chs, float(p_drop)
        self.packed = k_chs == q_chs and v_chs == q_chs
        if self.packed:
            self.in_proj_weight = parameter(_init.make(_init.XavierUnif(), (3 * q_chs, q_chs)))
        else:
            self.q_proj_weight = parameter(_init.make(_init.XavierUnif(), (q_chs, q_chs)))
            self.k_proj_weight = parameter(_init.make(_init.XavierUnif(), (q_chs, k_chs)))
            self.v_proj_weight = parameter(_init.make(_init.XavierUnif(), (q_chs, v_chs)))
        self.in_proj_bias = parameter(_init.make(_init.Zeros(), (3 * q_chs,)))
        self.out_proj = Dense(q_chs, q_chs)
        self.key, self.count = new_stream()

    def run(self, q, k, v, pad_mask=None, attn_mask=None):
        check_float_input(jnp.issubdtype(q.dtype, jnp.floating), q.dtype, type(self).__name__)
        _check_inputs(q, k, v, pad_mask, attn_mask, self)
        E, H, dtype = self.q_chs, self.nheads, q.dtype
        (L, N, _), S = q.shape, k.shape[0]
        if self.packed:
            w = self.in_proj_weight.get_value().astype(dtype)
            wq, wk, wv = w[:E], w[E : 2 * E], w[2 * E :]
        else:
            wq, wk, wv = (
                p.get_value().astype(dtype) for p in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
            )
        b = self.in_proj_bias.get_value().astype(dtype)
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
        if self.p_drop > 0.0 and self.is_training():
            keep = jax.random.bernoulli(draw(self.key, self.count), 1.0 - self.p_drop, weights.shape)
            weights = jnp.where(keep, weights / (1.0 - self.p_drop), jnp.zeros_like(weights))
        out = (weights @ vh).transpose(1, 0, 2).reshape(L, N, E)
        return self.out_proj(out), weights.reshape(N, H, L, S).mean(axis=1)
