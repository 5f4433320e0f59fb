"""Recurrent kernels on torch: the fused (cuDNN-capable) `_VF` functions torch.nn.RNN/LSTM/GRU call."""

import torch
from torch import _VF


def _state(s, x, weights, nlayers, bidirectional):
    if s is not None:
        return s
    return x.new_zeros((nlayers * (2 if bidirectional else 1), x.shape[1], weights[1].shape[1]))


def rnn(x, h0, weights, nlayers, bidirectional, training):
    h0 = _state(h0, x, weights, nlayers, bidirectional)
    return _VF.rnn_tanh(x, h0, weights, True, nlayers, 0.0, training, bidirectional, False)


def lstm(x, h0, c0, weights, nlayers, bidirectional, training):
    h0, c0 = (_state(s, x, weights, nlayers, bidirectional) for s in (h0, c0))
    return _VF.lstm(x, (h0, c0), weights, True, nlayers, 0.0, training, bidirectional, False)


def gru(x, h0, weights, nlayers, bidirectional, training):
    h0 = _state(h0, x, weights, nlayers, bidirectional)
    return _VF.gru(x, h0, weights, True, nlayers, 0.0, training, bidirectional, False)


def pack_recurrent(weights, mode, in_chs, hid_chs, nlayers, bidirectional):
    # as torch.nn.RNNBase.flatten_parameters: one contiguous cuDNN buffer; nothing to do off CUDA
    dtype = weights[0].dtype
    if len({w.data_ptr() for w in weights}) != len(weights) or any(
        w.dtype != dtype or not w.is_cuda or not torch.backends.cudnn.is_acceptable(w) for w in weights
    ):
        return
    import torch.backends.cudnn.rnn as cudnn_rnn

    with torch.cuda.device_of(weights[0]), torch.no_grad():
        if torch._use_cudnn_rnn_flatten_weight():
            torch._cudnn_rnn_flatten_weight(
                list(weights), 4, in_chs, cudnn_rnn.get_cudnn_mode(mode), hid_chs, 0, nlayers, False, bidirectional
            )
