"""Torch-style convolution arguments on both engines: int kernels, padding="same"|"valid", TransConv in Conv's order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests import parity

pytestmark = pytest.mark.once

RNG = np.random.default_rng(3)
X = RNG.normal(size=(2, 3, 9, 8)).astype(np.float32)


def torch_conv(craft, x, **kwargs):
    w = torch.from_numpy(craft.export_weights()["weight"])
    b = torch.from_numpy(craft.export_weights()["bias"])
    return F.conv2d(torch.from_numpy(x), w, b, **kwargs).numpy()


@pytest.mark.parametrize(
    "args, kwargs, reference",
    [
        ((3, 4, 3, 1), {}, {"stride": 1}),  # Conv2d(3, 4, 3, 1): an int kernel is (3, 3)
        ((3, 4, 3), {"padding": "same"}, {"padding": "same"}),
        ((3, 4, (2, 3)), {"padding": "same", "dilation": 2}, {"padding": "same", "dilation": 2}),
        ((3, 4, 3, 2), {"padding": "valid"}, {"stride": 2, "padding": "valid"}),
    ],
)
def test_conv_takes_torch_style_kernel_and_padding_on_both_engines(args, kwargs, reference):
    out_t, out_j, craft_t, _ = parity.outputs(lambda d: d.Conv(*args, **kwargs), X)
    np.testing.assert_allclose(out_t, torch_conv(craft_t, X, **reference), rtol=1e-5, atol=1e-5)
    parity.assert_same(out_t, out_j)


def test_same_padding_needs_stride_one_on_both_engines():
    for dock in parity.DOCKS:
        with pytest.raises(ValueError, match="padding='same' needs stride 1"):
            dock.Conv(3, 4, 3, 2, "same")


def test_transconv_takes_convs_argument_order_and_a_keyword_out_size():
    x = RNG.normal(size=(1, 3, 4, 5)).astype(np.float32)
    out_t, out_j, craft_t, _ = parity.outputs(lambda d: d.TransConv(3, 2, 3, 2, 1, out_size=(8, 10)), x)
    w = torch.from_numpy(craft_t.export_weights()["weight"])
    b = torch.from_numpy(craft_t.export_weights()["bias"])
    ref = F.conv_transpose2d(torch.from_numpy(x), w, b, stride=2, padding=1, output_padding=1).numpy()
    np.testing.assert_allclose(out_t, ref, rtol=1e-5, atol=1e-5)
    parity.assert_same(out_t, out_j)
    for dock in parity.DOCKS:
        with pytest.raises(TypeError):
            dock.TransConv(3, 2, 3, 2, 1, 1, 1, (8, 10))  # out_size is keyword-only
