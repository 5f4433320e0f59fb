"""Model summary on JAX: every sub-craft call's shapes (an abstract run) and the parameters' shapes and dtypes."""

from __future__ import annotations

import threading

import jax
import numpy as np
from flax import nnx

from nebulae.aerolog.inspector import layer_record

from . import mode as _mode
from . import step as _step
from . import tensor as _tensor
from .craft import Craft
from .layout import axes_of, neutral_shape

_lock = threading.Lock()


def _shapes(tree) -> list[tuple[int, ...]]:
    return [tuple(x.shape) for x in jax.tree.leaves(tree) if hasattr(x, "shape") and hasattr(x, "dtype")]


def parameters(craft) -> list[tuple[str, tuple[int, ...], str, int, bool]]:
    out, buffers = [], []
    for path, v in nnx.iter_graph(craft):
        if isinstance(v, (nnx.Param, nnx.BatchStat)):
            value = v.get_value()
            shape = neutral_shape(value.shape, axes_of(v))
            row = ("/".join(str(p) for p in path), shape, str(value.dtype), value.dtype.itemsize)
            (out if isinstance(v, nnx.Param) else buffers).append((*row, isinstance(v, nnx.Param)))
    return out + buffers


def layer_calls(craft, args: tuple, kwargs: dict) -> list[dict]:  # an abstract run (jax.eval_shape)
    graphdef, state = nnx.split(craft)
    leaves, treedef = jax.tree.flatten((tuple(args), dict(kwargs)))
    arrays = {i: _tensor.coat(x) for i, x in enumerate(leaves) if isinstance(x, (jax.Array, np.ndarray, np.generic))}
    records: list[dict] = []

    def abstract_run(state, arrays):
        model = nnx.merge(graphdef, state)
        paths = {}
        for path, m in nnx.iter_graph(model):
            if isinstance(m, Craft):
                paths.setdefault(id(m), "/".join(str(p) for p in path))
        full = [arrays.get(i, x) for i, x in enumerate(leaves)]
        a, k = jax.tree.unflatten(treedef, full)
        with _step.Tracing(_step.Recorder()), _Recording(paths, records):
            return model(*a, **k)

    with _lock, _mode.Nozzle():
        jax.eval_shape(abstract_run, state, arrays)
    return records


class _Recording:
    """While active, every Craft call (on any thread: hold `_lock`) appends a record of its shapes."""

    def __init__(self, paths: dict[int, str], records: list[dict]):
        self.paths, self.records, self.depth = paths, records, 0

    def __enter__(self):
        self.original = original = Craft.__call__
        rec = self

        def call(module, *a, **k):
            slot = len(rec.records)
            weight = getattr(module, "weight", None)
            weight = (
                neutral_shape(weight.get_value().shape, axes_of(weight)) if isinstance(weight, nnx.Variable) else None
            )
            rec.records.append(layer_record(rec.paths.get(id(module), ""), module, rec.depth, _shapes((a, k)), weight))
            rec.depth += 1
            try:
                out = original(module, *a, **k)
            finally:
                rec.depth -= 1
            rec.records[slot]["outputs"] = _shapes(out)
            return out

        Craft.__call__ = call
        return self

    def __exit__(self, *exc):
        Craft.__call__ = self.original
        return False


def export_onnx(craft, args: tuple, kwargs: dict, path: str, opset: int) -> None:
    raise NotImplementedError(
        "ONNX export is available on the torch engine only (NEB_CORE=pytorch); on JAX, export the weights "
        "with craft.export_weights() and load them into the same craft on torch"
    )
