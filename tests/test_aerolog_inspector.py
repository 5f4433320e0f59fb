"""aerolog.Inspector: per-layer shapes, parameter counts, memory by dtype and MACs, equal on both engines."""

from __future__ import annotations

import importlib
import importlib.util

import numpy as np
import pytest

from nebulae.aerolog.inspector import Inspector, summarize
from tests.conftest import assert_close


def net_of(dock):
    """Conv + BN + ReLU, a TransConv, a list of Dense layers and a shared activation."""

    class Net(dock.Craft):
        def __init__(self):
            super().__init__("NET")
            self.conv = dock.Conv(3, 4, (3, 3), padding=1)
            self.bn = dock.BN(4, 2)
            self.act = dock.Relu()
            self.up = dock.TransConv(4, 2, (2, 2), stride=2)
            self.head = [dock.Dense(2 * 8 * 8, 8), dock.Dense(8, 5)]

        def run(self, x):
            y = self.up(self.act(self.bn(self.conv(x))))
            y = y.reshape(y.shape[0], -1)
            return self.head[1](self.act(self.head[0](y)))

    return Net()


X = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
PARAMS = (4 * 3 * 9 + 4) + (4 + 4) + (4 * 2 * 4 + 2) + (128 * 8 + 8) + (8 * 5 + 5)
COUNTER = {"pytorch": {"int64": 8}, "jax": {"int32": 4}}  # BN's num_batches_tracked (JAX: 64-bit ints off)
MACS = 2 * 4 * 4 * 4 * 27 + 2 * 4 * 4 * 4 * 8 + 2 * 8 * 128 + 2 * 5 * 8  # conv, transconv, dense, dense
SHAPES = [
    ("", [(2, 5)]),
    ("conv", [(2, 4, 4, 4)]),
    ("bn", [(2, 4, 4, 4)]),
    ("act", [(2, 4, 4, 4)]),
    ("up", [(2, 2, 8, 8)]),
    ("head/0", [(2, 8)]),
    ("act", [(2, 8)]),
    ("head/1", [(2, 5)]),
]


def test_summary_through_dock(dock, engine, tmp_path, capsys):
    net = net_of(dock)
    before = net.export_weights()
    summary = Inspector(tmp_path / "net").dissect(net, X)
    assert [(layer.path, layer.outputs) for layer in summary.layers] == SHAPES
    assert [layer.depth for layer in summary.layers] == [0, 1, 1, 1, 1, 1, 1, 1]
    assert summary.params == PARAMS and summary.buffers == 9  # BN running mean, variance, num_batches_tracked
    assert summary.layers[0].params == PARAMS and summary.layers[5].params == 128 * 8 + 8
    assert summary.macs == MACS and summary.flops == 2 * MACS
    assert summary.memory == {"float32": 4 * (PARAMS + 8), **COUNTER[engine]}
    assert net.training  # still in train mode (the original left it in eval mode)
    for key, value in net.export_weights().items():
        assert_close(value, before[key], what=key)  # BN statistics untouched
    out = capsys.readouterr().out
    assert f"| Craft NET: {PARAMS:,} params" in out and "head/0" in out and "(2, 2, 8, 8)" in out
    net.gear(False)
    Inspector(verbose=False).dissect(net, X)
    assert not net.training and capsys.readouterr().out == ""


def test_memory_for_every_dtype(dock, engine):
    net = net_of(dock)
    if engine == "pytorch":
        import torch

        net.head[0].to(torch.bfloat16)
        net.head[1].to(torch.float16)
    else:
        import jax.numpy as jnp

        for layer, dtype in ((net.head[0], jnp.bfloat16), (net.head[1], jnp.float16)):
            for v in (layer.weight, layer.bias):
                v.set_value(v.get_value().astype(dtype))
    rows = importlib.import_module(f"nebulae.backends.{'torch' if engine == 'pytorch' else 'jax'}.summary").parameters(
        net
    )
    summary = summarize("NET", [], rows)
    low, half = 128 * 8 + 8, 8 * 5 + 5
    floats = {"bfloat16": 2 * low, "float16": 2 * half, "float32": 4 * (PARAMS + 8 - low - half)}
    assert summary.memory == {**floats, **COUNTER[engine]}
    assert "bfloat16 2.02 KiB, float16 90 B, float32 648 B" in summary.table


def test_onnx_export_needs_onnx(dock, tmp_path):
    if importlib.util.find_spec("onnx") is not None:
        pytest.skip("onnx is installed here; this test checks the error without it")
    with pytest.raises(ModuleNotFoundError, match="pip install onnx"):
        Inspector(tmp_path / "net").export(net_of(dock), X)
    assert not (tmp_path / "net.onnx").exists()


@pytest.mark.once
def test_parity_between_engines(both):
    tdock, jdock = both
    from nebulae.astro import init

    summaries = []
    for dock, engine in ((tdock, "torch"), (jdock, "jax")):
        init.seed(0)
        net = net_of(dock)
        backend = importlib.import_module(f"nebulae.backends.{engine}.summary")
        records = backend.layer_calls(net, (X,), {})
        summaries.append(summarize("NET", records, backend.parameters(net)))
    t, j = summaries
    assert [(layer.path, layer.kind, layer.depth, layer.outputs, layer.params, layer.macs) for layer in t.layers] == [
        (layer.path, layer.kind, layer.depth, layer.outputs, layer.params, layer.macs) for layer in j.layers
    ]
    assert (t.params, t.buffers, t.macs) == (j.params, j.buffers, j.macs) == (PARAMS, 9, MACS)
    floats = {"float32": 4 * (PARAMS + 8)}
    assert (t.memory, j.memory) == ({**floats, **COUNTER["pytorch"]}, {**floats, **COUNTER["jax"]})
    assert t.table.replace("int64 8 B", "int32 4 B") == j.table  # the counter's width is the only difference
