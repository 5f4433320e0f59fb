"""Attention: multi-head attention, sequence-first (L, N, E), as torch.nn.MultiheadAttention."""

from __future__ import annotations

from typing import Any, Protocol

from nebulae.astro import init as _init

from .base import check_float_input

__all__ = ["MHAttn"]


class Kernels(Protocol):
    def attention(
        self,
        q: Any,
        k: Any,
        v: Any,
        in_weights: tuple,
        in_bias: Any,
        out_weight: Any,
        out_bias: Any,
        nheads: int,
        pad_mask: Any,
        attn_mask: Any,
        p_drop: float,
        training: bool,
        stream: tuple,
    ) -> tuple:
        """torch.nn.MultiheadAttention's forward: (y, weights averaged over heads); `in_weights` is (packed,) or
        (q, k, v) projections; dropout `p_drop` on the weights in training, masks drawn from `stream`."""

    def attention_stream(self) -> tuple:
        """MHAttn's dropout stream (key, counter) seeded from the initialiser stream (torch draws from its own RNG)."""


def check_attention_inputs(q, k, v, pad_mask, attn_mask, craft) -> None:
    """Raise ValueError unless q, k, v and the masks have the shapes MHAttn `craft` expects."""
    q_chs, k_chs, v_chs = craft.q_chs, craft.k_chs, craft.v_chs
    for name, t, chs in (("q", q, q_chs), ("k", k, k_chs), ("v", v, v_chs)):
        if t.ndim != 3 or t.shape[-1] != chs:
            raise ValueError(f"MHAttn: {name} must be (length, batch, {chs}) (sequence-first), got {tuple(t.shape)}")
    if k.shape[:2] != v.shape[:2] or q.shape[1] != k.shape[1]:
        raise ValueError(
            f"MHAttn: k and v must share (length, batch) and q the batch, got q {tuple(q.shape)}, "
            f"k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    (L, N), S, H = q.shape[:2], k.shape[0], craft.nheads
    if attn_mask is not None and tuple(attn_mask.shape) not in ((L, S), (N * H, L, S)):
        raise ValueError(f"MHAttn: attn_mask must be {(L, S)} or {(N * H, L, S)}, got {tuple(attn_mask.shape)}")
    if pad_mask is not None and tuple(pad_mask.shape) != (N, S):
        raise ValueError(f"MHAttn: pad_mask must be (batch, key length) {(N, S)}, got {tuple(pad_mask.shape)}")


class MHAttn:
    """Multi-head attention as torch.nn.MultiheadAttention (embed dim q_chs, kdim k_chs, vdim v_chs).

    Call `(q, k, v, pad_mask=None, attn_mask=None)` on sequence-first q (L, N, q_chs), k (S, N, k_chs),
    v (S, N, v_chs); returns `(y, weights)`: y (L, N, q_chs) and the attention weights averaged over
    heads (N, L, S). `pad_mask` (N, S) bool, True = ignore that key; `attn_mask` (L, S) or
    (N * nheads, L, S), bool (True = not allowed) or float (added to the scores). Parameters:
    `in_proj_weight` when k_chs == v_chs == q_chs, else `q_proj_weight`, `k_proj_weight`,
    `v_proj_weight` (Xavier-uniform as torch); `in_proj_bias` (zeros); `out_proj/weight`,
    `out_proj/bias` (a Dense).

    Args:
        nheads: the number of heads; q_chs must divide by it.
        q_chs: the embedding size (of q and of the output).
        k_chs: the features of k.
        v_chs: the features of v.
        p_drop: dropout on the attention weights in train mode, in [0, 1). On JAX the masks come from the
            craft's own stream (seeded from the initialiser stream), on torch from torch's global RNG.
        scope: the name of this craft in checkpoints and summaries.
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
            self.param("in_proj_weight", _init.make(_init.XavierUnif(), (3 * q_chs, q_chs)))
        else:
            self.param("q_proj_weight", _init.make(_init.XavierUnif(), (q_chs, q_chs)))
            self.param("k_proj_weight", _init.make(_init.XavierUnif(), (q_chs, k_chs)))
            self.param("v_proj_weight", _init.make(_init.XavierUnif(), (q_chs, v_chs)))
        self.param("in_proj_bias", _init.make(_init.Zeros(), (3 * q_chs,)))
        self.out_proj = self.dock.Dense(q_chs, q_chs)
        self.key, self.count = self.ops.attention_stream()  # drawn last on both engines: streams stay aligned

    def run(self, q, k, v, pad_mask=None, attn_mask=None):
        check_float_input(self.ops, q, "MHAttn")
        check_attention_inputs(q, k, v, pad_mask, attn_mask, self)
        if self.packed:
            in_weights = (self.in_proj_weight,)
        else:
            in_weights = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        return self.ops.attention(
            q, k, v, in_weights, self.in_proj_bias, self.out_proj.weight, self.out_proj.bias, self.nheads,
            pad_mask, attn_mask, self.p_drop, self.is_training(), (self.key, self.count),
        )  # fmt: skip
