"""Inspector: a model summary on either engine (per-layer shapes, parameters, memory, FLOPs) and ONNX export.

The bound backend's `summary` module runs the craft once in eval mode without gradients (torch:
forward hooks; JAX: an abstract `jax.eval_shape` run, no computation) and reports each craft call
with its input/output shapes and weight shape; everything else is computed here from those shapes,
so the same craft gives the same table, counts and FLOPs on both engines.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nebulae import law
from nebulae.kit.rank import rank

__all__ = ["Inspector", "Layer", "Summary", "macs", "summarize"]


def layer_record(path: str, craft: Any, depth: int, inputs: list, weight: tuple | None) -> dict:
    """One record of a backend's `summary.layer_calls`: a craft call at `path` and nesting `depth`, with its input
    shapes and weight shape (None without one); "outputs" is filled in once the call returns."""
    return {
        "path": path,
        "kinds": [c.__name__ for c in type(craft).__mro__],
        "depth": depth,
        "inputs": inputs,
        "outputs": [],
        "weight": weight,
        "group": int(getattr(craft, "group", 1) or 1),
    }


def macs(record: dict) -> int:
    """Multiply-accumulates of one layer call from its shapes: Dense (outputs x in_chs), Conv (outputs x
    in_chs/group x kernel), TransConv (inputs x out_chs/group x kernel); 0 for every other craft (bias
    additions, activations, normalisation and pooling are not counted)."""
    kinds, weight = record["kinds"], record["weight"]
    if weight is None or not record["outputs"]:
        return 0
    if "Dense" in kinds:
        return math.prod(record["outputs"][0]) * weight[1]
    if "TransConv" in kinds:
        return math.prod(record["inputs"][0]) * math.prod(weight[1:]) if record["inputs"] else 0
    if "Conv" in kinds:
        return math.prod(record["outputs"][0]) * math.prod(weight[1:])
    return 0


def _order(path: str) -> list:
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.split("/")]


def _human(n: float, unit: str = "") -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{suffix}{unit}"
    return f"{n:.0f}{unit}"


def _bytes(n: int) -> str:
    for scale, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= scale:
            return f"{n / scale:.2f} {suffix}"
    return f"{n} B"


@dataclass
class Layer:
    """One craft call: its path in the model ('' for the model itself), type, nesting depth, output shapes,
    parameters under it (its own and its sub-crafts') and its multiply-accumulates."""

    path: str
    kind: str
    depth: int
    outputs: list[tuple[int, ...]]
    params: int
    macs: int


@dataclass
class Summary:
    """A model summary: layers in call order, trainable parameter and buffer counts, bytes per dtype
    (parameters and buffers), total multiply-accumulates (FLOPs counted as MACs), and the printed table."""

    scope: str
    layers: list[Layer]
    params: int
    buffers: int
    memory: dict[str, int] = field(default_factory=dict)
    macs: int = 0
    table: str = ""

    @property
    def flops(self) -> int:
        """Floating-point operations of the counted layers: 2 per multiply-accumulate."""
        return 2 * self.macs


class Inspector:
    """Summarise crafts (`dissect`) and export them to ONNX (`export`, torch with the `onnx` package).

    `export_path` is the ONNX file's path without extension; `verbose` prints summaries (rank 0 only).
    """

    def __init__(self, export_path: str | os.PathLike = "./craft", verbose: bool = True):
        self.export_path = Path(export_path)
        self.verbose = verbose

    def dissect(self, craft, *dummy_args, **dummy_kwargs) -> Summary:
        """Run `craft` once on the dummy inputs (NumPy arrays or engine tensors) in eval mode without
        gradients, leaving its mode and state unchanged, and return (and, if verbose, print) its summary."""
        backend = law.backend()
        inner = backend.universe.unwrap(craft)
        records = backend.summary.layer_calls(inner, dummy_args, dummy_kwargs)
        scope = str(getattr(craft, "scope", type(craft).__name__))
        summary = summarize(scope, records, backend.summary.parameters(inner))
        if self.verbose and rank() == 0:
            print(summary.table, flush=True)
        return summary

    def export(self, craft, *dummy_args, opset: int = 17, **dummy_kwargs) -> Path:
        """Write `craft` as ONNX to `export_path` + '.onnx' (torch only; needs `pip install onnx`); returns the path."""
        if importlib.util.find_spec("onnx") is None:
            raise ModuleNotFoundError("Inspector.export needs the onnx package: pip install onnx")
        path = self.export_path.with_name(self.export_path.name + ".onnx")
        path.parent.mkdir(parents=True, exist_ok=True)
        if rank() == 0:
            backend = law.backend()
            backend.summary.export_onnx(backend.universe.unwrap(craft), dummy_args, dummy_kwargs, str(path), opset)
        return path


def summarize(scope: str, records: list[dict], rows: list[tuple]) -> Summary:
    """Build a Summary from a backend's `layer_calls` records and `parameters` rows (engine-neutral)."""
    rows = sorted(rows, key=lambda r: _order(r[0]))
    params = [r for r in rows if r[4]]
    memory: dict[str, int] = {}
    for _, shape, dtype, itemsize, _ in rows:
        memory[dtype] = memory.get(dtype, 0) + math.prod(shape) * itemsize
    layers = []
    for rec in records:
        prefix = rec["path"]
        count = sum(
            math.prod(shape)
            for path, shape, *_ in params
            if not prefix or path == prefix or path.startswith(prefix + "/")
        )
        layers.append(Layer(prefix, rec["kinds"][0], rec["depth"], rec["outputs"], count, macs(rec)))
    summary = Summary(
        scope=scope,
        layers=layers,
        params=sum(math.prod(r[1]) for r in params),
        buffers=sum(math.prod(r[1]) for r in rows if not r[4]),
        memory=memory,
        macs=sum(layer.macs for layer in layers),
    )
    summary.table = _table(summary)
    return summary


def _table(s: Summary) -> str:
    head = ("Layer", "Type", "Output shape", "Params", "MACs")
    body = []
    for layer in s.layers:
        name = "  " * layer.depth + (layer.path or s.scope)
        shape = ", ".join(str(tuple(o)) for o in layer.outputs[:2]) + (" ..." if len(layer.outputs) > 2 else "")
        body.append((name, layer.kind, shape, f"{layer.params:,}", _human(layer.macs) if layer.macs else "-"))
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(5)]

    def row(r: tuple[Any, ...]) -> str:
        return (
            "| "
            + " | ".join(str(v).ljust(w) if i < 3 else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
            + " |"
        )

    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    memory = ", ".join(f"{dtype} {_bytes(n)}" for dtype, n in sorted(s.memory.items())) or "none"
    total = (
        f"| Craft {s.scope}: {s.params:,} params ({_human(s.params)}), {s.buffers:,} buffer values, "
        f"memory {memory}, {_human(s.macs)} MACs ({_human(s.flops)} FLOPs)"
    )
    return "\n".join([rule, row(head), rule, *(row(r) for r in body), rule, total, rule])
