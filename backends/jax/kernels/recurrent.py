"""Recurrent kernels on JAX: each layer and direction is one `jax.lax.scan` (the backward one in reverse)."""

import jax
import jax.numpy as jnp

from .base import value

# each cell steps a tuple of states (h,) or (h, c) over one time step of the input term xt


def _tanh_cell(w_hh, b_hh):
    def step(carry, xt):
        h = jnp.tanh(xt + carry[0] @ w_hh.T)
        return (h,), h

    return step


def _lstm_cell(w_hh, b_hh):
    def step(carry, xt):
        h, c = carry
        i, f, g, o = jnp.split(xt + h @ w_hh.T, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    return step


def _gru_cell(w_hh, b_hh):
    def step(carry, xt):
        (h,) = carry
        xr, xz, xn = jnp.split(xt, 3, axis=-1)
        hr, hz, hn = jnp.split(h @ w_hh.T + b_hh, 3, axis=-1)
        r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
        h = (1 - z) * jnp.tanh(xn + r * hn) + z * h
        return (h,), h

    return step


def _stack(cell, x, states, weights, nlayers, bidirectional, fold=True):
    """Run every layer and direction from `states` (one or two (L * D, N, H) arrays or None): (y, *final states).

    `fold` adds the hidden bias to the input term (all cells but GRU's, which needs r * (W_hn h + b_hn)).
    """
    ndir = 2 if bidirectional else 1
    hid = value(weights[1]).shape[1]
    shape = (nlayers * ndir, x.shape[1], hid)
    states = [jnp.zeros(shape, x.dtype) if s is None else value(s, x) for s in states]
    finals = [[] for _ in states]
    for layer in range(nlayers):
        ys = []
        for d in range(ndir):
            k = layer * ndir + d
            w_ih, w_hh, b_ih, b_hh = (value(w, x) for w in weights[4 * k : 4 * k + 4])
            xs = x @ w_ih.T + (b_ih + b_hh if fold else b_ih)
            carry, y = jax.lax.scan(cell(w_hh, b_hh), tuple(s[k] for s in states), xs, reverse=bool(d))
            for out, c in zip(finals, carry):
                out.append(c)
            ys.append(y)
        x = ys[0] if ndir == 1 else jnp.concatenate(ys, axis=-1)
    return (x, *(jnp.stack(f) for f in finals))


def rnn(x, h0, weights, nlayers, bidirectional, training):
    return _stack(_tanh_cell, x, (h0,), weights, nlayers, bidirectional)


def lstm(x, h0, c0, weights, nlayers, bidirectional, training):
    return _stack(_lstm_cell, x, (h0, c0), weights, nlayers, bidirectional)


def gru(x, h0, weights, nlayers, bidirectional, training):
    return _stack(_gru_cell, x, (h0,), weights, nlayers, bidirectional, fold=False)


def pack_recurrent(weights, mode, in_chs, hid_chs, nlayers, bidirectional):
    return None  # XLA lays out its own buffers; torch packs for cuDNN here
