"""Attention crafts on torch: multi-head attention, sequence-first (L, N, E), as torch.nn.MultiheadAttention."""

from __future__ import annotations

import torch.nn.functional as F

from nebulae.astro import init as _init
from nebulae.astro.args import check_attention_inputs as _check_inputs
from nebulae.astro.args import check_float_input

from .craft import Craft
from .legacy import Dense, parameter

__all__ = ["MHAttn"]


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
        self.seed = _init.draw_seed()  # the JAX craft seeds its dropout stream here; keeps both streams aligned

    def run(self, q, k, v, pad_mask=None, attn_mask=None):
        check_float_input(q.is_floating_point(), q.dtype, type(self).__name__)
        _check_inputs(q, k, v, pad_mask, attn_mask, self)
        packed = self.packed
        return F.multi_head_attention_forward(
            q,
            k,
            v,
            self.q_chs,
            self.nheads,
            self.in_proj_weight if packed else None,
            self.in_proj_bias,
            None,
            None,
            False,
            self.p_drop,
            self.out_proj.weight,
            self.out_proj.bias,
            training=self.is_training(),
            key_padding_mask=pad_mask,
            need_weights=True,
            attn_mask=attn_mask,
            use_separate_proj_weight=not packed,
            q_proj_weight=None if packed else self.q_proj_weight,
            k_proj_weight=None if packed else self.k_proj_weight,
            v_proj_weight=None if packed else self.v_proj_weight,
            average_attn_weights=True,
        )
