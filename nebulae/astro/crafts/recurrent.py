"""Recurrent crafts: tanh RNN, LSTM and GRU and their bidirectional forms, sequence-first (T, N, C).

Parameters are held by the craft itself under torch.nn.RNN/LSTM/GRU's names and shapes (`weight_ih_l0`,
`weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, `..._reverse` for the backward direction; LSTM gate order
i, f, g, o; GRU r, z, n), initialised U(-1/sqrt(hid_chs), 1/sqrt(hid_chs)) as torch does. Each
recurrence is one kernel: torch's fused (cuDNN-capable) functions, a `jax.lax.scan` per layer and
direction on JAX.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from nebulae.astro import init as _init

from .base import check_float_input

__all__ = ["RNN", "BiRNN", "LSTM", "BiLSTM", "GRU", "BiGRU"]


class Kernels(Protocol):
    def rnn(self, x: Any, h0: Any, weights: tuple, nlayers: int, bidirectional: bool, training: bool) -> tuple:
        """Multi-layer tanh RNN over (T, N, C) `x` from `h0` (layers * directions, N, H; None: zeros): (y, h_n)."""

    def lstm(
        self, x: Any, h0: Any, c0: Any, weights: tuple, nlayers: int, bidirectional: bool, training: bool
    ) -> tuple:
        """Multi-layer LSTM (gates i, f, g, o) as `rnn`, from `h0` and `c0` (None: zeros): (y, h_n, c_n)."""

    def gru(self, x: Any, h0: Any, weights: tuple, nlayers: int, bidirectional: bool, training: bool) -> tuple:
        """Multi-layer GRU (gates r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn))) as `rnn`: (y, h_n)."""

    def pack_recurrent(
        self, weights: tuple, mode: str, in_chs: int, hid_chs: int, nlayers: int, bidirectional: bool
    ) -> None:
        """After a device move, lay `weights` out as the fused kernel wants them (cuDNN's one buffer on torch)."""


def recurrent_states(craft, x, states: tuple) -> tuple:
    """Check `x` and the initial states; add the batch axis of unbatched input: (x, states, batched).

    `x` is (T, N, in_chs) or unbatched (T, in_chs); each state (layers * directions, N, hid_chs) (without N
    for unbatched input) or None (zeros).
    """
    name = type(craft).__name__
    if x.ndim not in (2, 3) or x.shape[-1] != craft.in_chs:
        raise ValueError(f"{name}: expected input (T, N, {craft.in_chs}) or (T, {craft.in_chs}), got {tuple(x.shape)}")
    batched = x.ndim == 3
    if not batched:
        x = x[:, None]
    shape = (craft.nlayers * craft.ndir, x.shape[1], craft.hid_chs)
    out = []
    for s in states:
        if s is not None:
            if not batched:
                s = s[:, None]
            if tuple(s.shape) != shape:
                raise ValueError(f"{name}: initial state must have shape {shape}, got {tuple(s.shape)}")
        out.append(s)
    return x, tuple(out), batched


class _Recurrent:
    """What every recurrent craft shares: torch's parameters in torch's order and their cuDNN packing."""

    _mode = "RNN_TANH"  # cuDNN's name of the recurrence
    _kernel = "rnn"  # the kernel that runs it
    _gates = 1
    _ndir = 1

    def _build(self, in_chs: int, hid_chs: int, nlayers: int) -> None:
        """Create the parameters in torch's order (layer, direction, w_ih, w_hh, b_ih, b_hh)."""
        if in_chs < 1 or hid_chs < 1 or nlayers < 1:
            raise ValueError(
                f"{type(self).__name__}: in_chs, hid_chs and nlayers must be positive, "
                f"got {in_chs}, {hid_chs}, {nlayers}"
            )
        ndir = self._ndir
        self.in_chs, self.hid_chs, self.nlayers, self.ndir = in_chs, hid_chs, nlayers, ndir
        k, rows = 1.0 / math.sqrt(hid_chs), self._gates * hid_chs
        names = []
        for layer in range(nlayers):
            for d in range(ndir):
                suffix = f"_l{layer}" + ("_reverse" if d else "")
                fan_in = in_chs if layer == 0 else hid_chs * ndir
                for stem, shape in (
                    ("weight_ih", (rows, fan_in)),
                    ("weight_hh", (rows, hid_chs)),
                    ("bias_ih", (rows,)),
                    ("bias_hh", (rows,)),
                ):
                    self.param(stem + suffix, _init.make(_init.Uniform(-k, k), shape))
                    names.append(stem + suffix)
        self._names = tuple(names)

    def run(self, x, h=None):
        """Run the recurrence (RNN, GRU; LSTM overrides it to carry c)."""
        check_float_input(self.ops, x, type(self).__name__)
        x, (h,), batched = recurrent_states(self, x, (h,))
        kernel = getattr(self.ops, self._kernel)
        out = kernel(x, h, self._flat(), self.nlayers, self.ndir == 2, self.is_training())
        return _unbatch(out, batched)

    def _flat(self) -> tuple:
        """The weights in torch's flat order, read on every call (so SN's swapped weight is seen)."""
        return tuple(getattr(self, n) for n in self._names)

    def moved(self) -> None:
        """Repack the weights for cuDNN after a move, as torch.nn.LSTM does (a no-op kernel on JAX)."""
        self.ops.pack_recurrent(self._flat(), self._mode, self.in_chs, self.hid_chs, self.nlayers, self.ndir == 2)


def _unbatch(outputs: tuple, batched: bool) -> tuple:
    return outputs if batched else tuple(o[:, 0] for o in outputs)


class RNN(_Recurrent):
    """Elman RNN with tanh, as torch.nn.RNN: call `(x, h=None)` on (T, N, in_chs), returns `(y, h)`.

    y is (T, N, hid_chs), h the last hidden states (nlayers, N, hid_chs); a missing h starts at zero.
    An unbatched (T, in_chs) input (and h without N) gives y (T, hid_chs) and h (nlayers, hid_chs).

    Args:
        in_chs: input features (the last axis of x).
        hid_chs: hidden features.
        nlayers: the number of stacked layers.
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, in_chs: int, hid_chs: int, nlayers: int = 1, scope: str = "RNN"):
        super().__init__(scope)
        self._build(in_chs, hid_chs, nlayers)


class BiRNN(RNN):
    """Bidirectional tanh RNN: y is (T, N, 2 * hid_chs), h (2 * nlayers, N, hid_chs), layer-major as torch.

    Args:
        in_chs: input features (the last axis of x).
        hid_chs: hidden features per direction.
        nlayers: the number of stacked layers.
        scope: the name of this craft in checkpoints and summaries.
    """

    _ndir = 2

    def __init__(self, in_chs: int, hid_chs: int, nlayers: int = 1, scope: str = "BIRNN"):
        super().__init__(in_chs, hid_chs, nlayers, scope)


class LSTM(_Recurrent):
    """LSTM as torch.nn.LSTM (gates i, f, g, o): call `(x, h=None, c=None)` on (T, N, in_chs), returns `(y, h, c)`.

    A missing initial h or c starts at zero; y is (T, N, hid_chs), h and c (nlayers, N, hid_chs).
    An unbatched (T, in_chs) input (and states without N) gives outputs without N.

    Args:
        in_chs: input features (the last axis of x).
        hid_chs: hidden features.
        nlayers: the number of stacked layers.
        scope: the name of this craft in checkpoints and summaries.
    """

    _mode, _kernel = "LSTM", "lstm"
    _gates = 4

    def __init__(self, in_chs: int, hid_chs: int, nlayers: int = 1, scope: str = "LSTM"):
        super().__init__(scope)
        self._build(in_chs, hid_chs, nlayers)

    def run(self, x, h=None, c=None):
        check_float_input(self.ops, x, type(self).__name__)
        x, (h, c), batched = recurrent_states(self, x, (h, c))
        out = self.ops.lstm(x, h, c, self._flat(), self.nlayers, self.ndir == 2, self.is_training())
        return _unbatch(out, batched)


class BiLSTM(LSTM):
    """Bidirectional LSTM: y is (T, N, 2 * hid_chs), h and c (2 * nlayers, N, hid_chs), layer-major as torch.

    Args:
        in_chs: input features (the last axis of x).
        hid_chs: hidden features per direction.
        nlayers: the number of stacked layers.
        scope: the name of this craft in checkpoints and summaries.
    """

    _ndir = 2

    def __init__(self, in_chs: int, hid_chs: int, nlayers: int = 1, scope: str = "BILSTM"):
        super().__init__(in_chs, hid_chs, nlayers, scope)


class GRU(_Recurrent):
    """GRU as torch.nn.GRU (gates r, z, n): call `(x, h=None)` on (T, N, in_chs), returns `(y, h)`.

    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h. y is (T, N, hid_chs), h the
    last hidden states (nlayers, N, hid_chs); a missing h starts at zero. An unbatched (T, in_chs) input
    (and h without N) gives outputs without N.

    Args:
        in_chs: input features (the last axis of x).
        hid_chs: hidden features.
        nlayers: the number of stacked layers.
        scope: the name of this craft in checkpoints and summaries.
    """

    _mode, _kernel = "GRU", "gru"
    _gates = 3

    def __init__(self, in_chs: int, hid_chs: int, nlayers: int = 1, scope: str = "GRU"):
        super().__init__(scope)
        self._build(in_chs, hid_chs, nlayers)


class BiGRU(GRU):
    """Bidirectional GRU: y is (T, N, 2 * hid_chs), h (2 * nlayers, N, hid_chs), layer-major as torch.

    Args:
        in_chs: input features (the last axis of x).
        hid_chs: hidden features per direction.
        nlayers: the number of stacked layers.
        scope: the name of this craft in checkpoints and summaries.
    """

    _ndir = 2

    def __init__(self, in_chs: int, hid_chs: int, nlayers: int = 1, scope: str = "BIGRU"):
        super().__init__(in_chs, hid_chs, nlayers, scope)
