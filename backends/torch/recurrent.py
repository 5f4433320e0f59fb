"""Recurrent crafts on torch: tanh RNN and LSTM, sequence-first (T, N, C), torch.nn.RNN/LSTM's parameters.

Parameters are held by the craft itself under torch's names and shapes (`weight_ih_l0`,
`weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, `..._reverse` for the backward direction; LSTM gate
order i, f, g, o), initialised U(-1/sqrt(hid), 1/sqrt(hid)) as torch does, and run by torch's
fused (cuDNN-capable) kernels.
"""

from __future__ import annotations

import math

import torch
from torch import _VF

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
    names = []
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
                names.append(stem + suffix)
    craft._names = tuple(names)


def _prepare(craft, x, states):
    """Check shapes; add the batch axis of unbatched input; zeros for missing initial states."""
    if x.ndim not in (2, 3) or x.shape[-1] != craft.in_chs:
        raise ValueError(
            f"{type(craft).__name__}: expected input (T, N, {craft.in_chs}) or (T, {craft.in_chs}), "
            f"got {tuple(x.shape)}"
        )
    batched = x.ndim == 3
    if not batched:
        x = x.unsqueeze(1)
    shape = (craft.nlayers * craft.ndir, x.shape[1], craft.hid_chs)
    out = []
    for s in states:
        if s is None:
            s = x.new_zeros(shape)
        else:
            if not batched:
                s = s.unsqueeze(1)
            if tuple(s.shape) != shape:
                raise ValueError(f"{type(craft).__name__}: initial state must have shape {shape}, got {tuple(s.shape)}")
        out.append(s)
    return x, out, batched


def _flat(craft) -> list:
    """The weights in torch's flat order, read from `_parameters` on every call (sees swaps by functional_call)."""
    params = craft._parameters
    return [params[n] for n in craft._names]


def _flatten_for_cudnn(craft, mode: str) -> None:
    """Give the weights one contiguous cuDNN buffer (as torch.nn.RNNBase.flatten_parameters); no-op elsewhere."""
    flat = _flat(craft)
    dtype = flat[0].dtype
    if any(w.dtype != dtype or not w.is_cuda or not torch.backends.cudnn.is_acceptable(w) for w in flat) or len(
        {w.data_ptr() for w in flat}
    ) != len(flat):
        return
    import torch.backends.cudnn.rnn as cudnn_rnn

    with torch.cuda.device_of(flat[0]), torch.no_grad():
        if torch._use_cudnn_rnn_flatten_weight():
            torch._cudnn_rnn_flatten_weight(
                flat,
                4,
                craft.in_chs,
                cudnn_rnn.get_cudnn_mode(mode),
                craft.hid_chs,
                0,
                craft.nlayers,
                False,
                craft.ndir == 2,
            )


class _Recurrent(Craft):
    """Shared plumbing: after `.to()` / `.cuda()` the weights are packed for cuDNN, as torch.nn.LSTM does."""

    _mode = "RNN_TANH"

    def _apply(self, fn, recurse=True):
        out = super()._apply(fn, recurse)
        _flatten_for_cudnn(self, self._mode)
        return out


class RNN(_Recurrent):
    """Elman RNN with tanh, as torch.nn.RNN: call `(x, h=None)` on (T, N, in_chs), returns `(y, h)`.

    y is (T, N, hid_chs), h the last hidden states (nlayers, N, hid_chs); a missing h starts at zero.
    """

    def __init__(self, in_chs: int, hid_chs: int, nlayers: int = 1, scope: str = "RNN"):
        super().__init__(scope)
        _build(self, in_chs, hid_chs, nlayers, 1, 1)

    def run(self, x, h=None):
        check_float_input(x.is_floating_point(), x.dtype, type(self).__name__)
        x, (h,), batched = _prepare(self, x, (h,))
        y, h = _VF.rnn_tanh(x, h, _flat(self), True, self.nlayers, 0.0, self.is_training(), self.ndir == 2, False)
        return (y, h) if batched else (y.squeeze(1), h.squeeze(1))


class BiRNN(RNN):
    """Bidirectional tanh RNN: y is (T, N, 2 * hid_chs), h (2 * nlayers, N, hid_chs), layer-major as torch."""

    def __init__(self, in_chs: int, hid_chs: int, nlayers: int = 1, scope: str = "BIRNN"):
        _Recurrent.__init__(self, scope)
        _build(self, in_chs, hid_chs, nlayers, 2, 1)


class LSTM(_Recurrent):
    """LSTM as torch.nn.LSTM (gates i, f, g, o): call `(x, h=None, c=None)` on (T, N, in_chs), returns `(y, h, c)`.

    A missing initial h or c starts at zero; y is (T, N, hid_chs), h and c (nlayers, N, hid_chs).
    """

    _mode = "LSTM"

    def __init__(self, in_chs: int, hid_chs: int, nlayers: int = 1, scope: str = "LSTM"):
        super().__init__(scope)
        _build(self, in_chs, hid_chs, nlayers, 1, 4)

    def run(self, x, h=None, c=None):
        check_float_input(x.is_floating_point(), x.dtype, type(self).__name__)
        x, (h, c), batched = _prepare(self, x, (h, c))
        y, h, c = _VF.lstm(x, (h, c), _flat(self), True, self.nlayers, 0.0, self.is_training(), self.ndir == 2, False)
        return (y, h, c) if batched else (y.squeeze(1), h.squeeze(1), c.squeeze(1))


class BiLSTM(LSTM):
    """Bidirectional LSTM: y is (T, N, 2 * hid_chs), h and c (2 * nlayers, N, hid_chs), layer-major as torch."""

    def __init__(self, in_chs: int, hid_chs: int, nlayers: int = 1, scope: str = "BILSTM"):
        _Recurrent.__init__(self, scope)
        _build(self, in_chs, hid_chs, nlayers, 2, 4)
