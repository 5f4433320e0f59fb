"""A model written once with many crafts moves between engines through exported weights."""

from __future__ import annotations

import numpy as np
import pytest

from nebulae.astro import init
from tests.parity import assert_same

pytestmark = pytest.mark.once


def hybrid(dock):
    """Conv + BN + Dropout + pooling -> per-column sequence -> LSTM -> MHAttn -> Dense head."""

    class Hybrid(dock.Craft):
        def __init__(self):
            super().__init__("HYBRID")
            self.conv = dock.Conv(3, 8, (3, 3), padding=1, b_init=dock.Void())
            self.bn = dock.BN(8, 2)
            self.act = dock.Relu()
            self.drop = dock.Dropout(0.3, dim=2)
            self.pool = dock.MaxPool((2, 2))
            self.lstm = dock.LSTM(8 * 4, 16)
            self.attn = dock.MHAttn(2, 16, 16, 16)
            self.gap = dock.AvgPool((-1,))
            self.fc = dock.Dense(16, 5)
            self.reshape, self.permute = dock.Reshape(), dock.Permute()

        def run(self, x):
            y = self.pool(self.drop(self.act(self.bn(self.conv(x)))))  # (N, 8, 4, 6)
            n, c, h, w = y.shape
            seq = self.permute(self.reshape(y, (n, c * h, w)), (2, 0, 1))  # (W, N, C*H): columns as time steps
            seq, _, _ = self.lstm(seq)
            seq, _ = self.attn(seq, seq, seq)
            pooled = self.gap(self.permute(seq, (1, 2, 0)))
            return self.fc(self.reshape(pooled, (n, -1)))

    return Hybrid()


def _train_a_little(dock, net, x):
    with dock.Rudder():
        for _ in range(3):
            net(dock.coat(x))  # BN statistics move away from their initial values


@pytest.mark.parametrize("source", [0, 1])
def test_weights_exported_on_one_engine_reproduce_eval_outputs_on_the_other(both, source):
    x = np.random.default_rng(0).normal(size=(2, 3, 8, 12)).astype(np.float32)
    src_dock, dst_dock = both[source], both[1 - source]
    init.seed(0)
    src = hybrid(src_dock)
    _train_a_little(src_dock, src, x)
    weights = src.export_weights()
    assert {
        "conv/weight",
        "bn/running_mean",
        "lstm/weight_ih_l0",
        "attn/in_proj_weight",
        "attn/out_proj/weight",
        "fc/bias",
    } <= set(weights)
    init.seed(123)  # different initial weights: only the import can make the outputs agree
    dst = hybrid(dst_dock)
    before = dst.export_weights()
    assert not np.allclose(before["fc/weight"], weights["fc/weight"])
    report = dst.import_weights(weights)
    assert report.clean
    with src_dock.Nozzle():
        y_src = src_dock.shell(src(src_dock.coat(x)))
    with dst_dock.Nozzle():
        y_dst = dst_dock.shell(dst(dst_dock.coat(x)))
    assert y_src.shape == (2, 5)
    assert_same(y_src, y_dst, what="eval outputs across engines")
    with dst_dock.Rudder():
        y_train = dst_dock.shell(dst(dst_dock.coat(x)))
    assert not np.allclose(y_train, y_dst), "train mode (dropout, batch statistics) must differ from eval"
