"""Recurrent crafts on JAX: tanh RNN and LSTM, sequence-first (T, N, C), torch.nn.RNN/LSTM's parameters.

Parameters are held by the craft itself under torch's names and shapes (`weight_ih_l0`,
`weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, `..._reverse` for the backward direction; LSTM gate
order i, f, g, o), initialised U(-1/sqrt(hid), 1/sqrt(hid)) as torch does. Each layer and
direction is one `jax.lax.scan` (the backward direction scans in reverse).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from nebulae.astro import init as _init
from nebulae.astro.args import check_float_input

from .craft import Craft
from .legacy import parameter

__all__ = ["RNN", "BiRNN", "LSTM", "BiLSTM"]


def _build(craft, in_chs: int, hid_chs: int, nlayers: int, ndir: int, ngates: int) -> None:
    """Create the parameters in torch's order (layer, direction, w_ih, w_hh, b_ih, b_hh)."""
    if in_chs < 1 or hid_chs < 1 or nlayers < 1:
        raise ValueError(f"{type(craft).__name__}: in_chs, hid_chs and nlayers must be positive")
    craft.in_chs, craft.hid_chs, craft.nlayers, craft.ndir = in_chs, hid_chs, nlayers, ndir
    k = 1.0 / math.sqrt(hid_chs)
    for layer in range(nlayers):
        for d in range(ndir):
            suffix = f"_l{layer}" + ("_reverse" if d else "")
            fan_in = in_chs if layer == 0 else hid_chs * ndir
            for stem, shape in (
                ("weight_ih", (ngates * hid_chs, fan_in)),
                ("weight_hh", (ngates * hid_chs, hid_chs)),
                ("bias_ih", (ngates * hid_chs,)),
                ("bias_hh", (ngates * hid_chs,)),
            ):
                setattr(craft, stem + suffix, parameter(_init.make(_init.Uniform(-k, k), shape)))


def _prepare(craft, x, states):
    """Check shapes; add the batch axis of unbatched input; zeros for missing initial states."""
    if x.ndim not in (2, 3) or x.shape[-1] != craft.in_chs:
        raise ValueError(
            f"{type(craft).__name__}: expected input (T, N, {craft.in_chs}) or (T, {craft.in_chs}), "
            f"got {tuple(x.shape)}"
        )
    batched = x.ndim == 3
    if not batched:
        x = x[:, None]
    shape = (craft.nlayers * craft.ndir, x.shape[1], craft.hid_chs)
    out = []
    for s in states:
        if s is None:
            s = jnp.zeros(shape, x.dtype)
        else:
            if not batched:
                s = s[:, None]
            if tuple(s.shape) != shape:
                raise ValueError(f"{type(craft).__name__}: initial state must have shape {shape}, got {tuple(s.shape)}")
            s = s.astype(x.dtype)
        out.append(s)
    return x, out, batched


def _tanh_cell(w_hh):
    def step(h, xt):
        h = jnp.tanh(xt + h @ w_hh.T)
        return h, h

    return step


def _lstm_cell(w_hh):
    def step(carry, xt):
        h, c = carry
        i, f, g, o = jnp.split(xt + h @ w_hh.T, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    return step


def _stack(craft, x, h0, c0):
    """Run every layer and direction; returns (y, h_n, c_n) with c_n None for the tanh RNN."""
    lstm = c0 is not None
    hs, cs = [], []
    for layer in range(craft.nlayers):
        ys = []
        for d in range(craft.ndir):
            suffix = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh, b_ih, b_hh = (
                getattr(craft, stem + suffix).get_value().astype(x.dtype)
                for stem in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            )
            xs = x @ w_ih.T + (b_ih + b_hh)
            k = layer * craft.ndir + d
            cell = (_lstm_cell if lstm else _tanh_cell)(w_hh)
            carry = (h0[k], c0[k]) if lstm else h0[k]
            carry, y = jax.lax.scan(cell, carry, xs, reverse=bool(d))
            if lstm:
                hs.append(carry[0])
                cs.append(carry[1])
            else:
                hs.append(carry)
            ys.append(y)
        x = ys[0] if len(ys) == 1 else jnp.concatenate(ys, axis=-1)
    return x, jnp.stack(hs), (jnp.stack(cs) if lstm else None)


class RNN(Craft):
    """Elman RNN with tanh, as torch.nn.RNN: call `(x, h=None)` on (T, N, in_chs), returns `(y, h)`.

    y is (T, N, hid_chs), h the last hidden states (nlayers, N, hid_chs); a missing h starts at zero.
    """

    def __init__(self, in_chs: int, hid_chs: int, nlayers: int = 1, scope: str = "RNN"):
        super().__init__(scope)
        _build(self, in_chs, hid_chs, nlayers, 1, 1)

    def run(self, x, h=None):
        check_float_input(jnp.issubdtype(x.dtype, jnp.floating), x.dtype, type(self).__name__)
        x, (h,), batched = _prepare(self, x, (h,))
        y, h, _ = _stack(self, x, h, None)
        return (y, h) if batched else (y[:, 0], h[:, 0])


class BiRNN(RNN):
    """Bidirectional tanh RNN: y is (T, N, 2 * hid_chs), h (2 * nlayers, N, hid_chs), layer-major as torch."""

    def __init__(self, in_chs: int, hid_chs: int, nlayers: int = 1, scope: str = "BIRNN"):
        Craft.__init__(self, scope)
        _build(self, in_chs, hid_chs, nlayers, 2, 1)


class LSTM(Craft):
    """LSTM as torch.nn.LSTM (gates i, f, g, o): call `(x, h=None, c=None)` on (T, N, in_chs), returns `(y, h, c)`.

    A missing initial h or c starts at zero; y is (T, N, hid_chs), h and c (nlayers, N, hid_chs).
    """

    def __init__(self, in_chs: int, hid_chs: int, nlayers: int = 1, scope: str = "LSTM"):
        super().__init__(scope)
        _build(self, in_chs, hid_chs, nlayers, 1, 4)

    def run(self, x, h=None, c=None):
        check_float_input(jnp.issubdtype(x.dtype, jnp.floating), x.dtype, type(self).__name__)
        x, (h, c), batched = _prepare(self, x, (h, c))
        y, h, c = _stack(self, x, h, c)
        return (y, h, c) if batched else (y[:, 0], h[:, 0], c[:, 0])


class BiLSTM(LSTM):
    """Bidirectional LSTM: y is (T, N, 2 * hid_chs), h and c (2 * nlayers, N, hid_chs), layer-major as torch."""

    def __init__(self, in_chs: int, hid_chs: int, nlayers: int = 1, scope: str = "BILSTM"):
        Craft.__init__(self, scope)
        _build(self, in_chs, hid_chs, nlayers, 2, 4)
