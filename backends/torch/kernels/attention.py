"""Attention kernels on torch: torch.nn.MultiheadAttention's functional forward."""

import torch.nn.functional as F

from nebulae.astro import init as _init


def attention(
    q, k, v, in_weights, in_bias, out_weight, out_bias, nheads, pad_mask, attn_mask, p_drop, training, stream
):
    packed = len(in_weights) == 1
    wq, wk, wv = (None, None, None) if packed else in_weights
    return F.multi_head_attention_forward(
        q, k, v, q.shape[-1], nheads, in_weights[0] if packed else None, in_bias, None, None, False, p_drop,
        out_weight, out_bias, training=training, key_padding_mask=pad_mask, need_weights=True,
        attn_mask=attn_mask, use_separate_proj_weight=not packed, q_proj_weight=wq, k_proj_weight=wk,
        v_proj_weight=wv, average_attn_weights=True,
    )  # fmt: skip


def attention_stream():
    # the seed is drawn only to keep the initialiser stream in step with JAX's; torch's global RNG draws the masks
    return _init.draw_seed(), None
