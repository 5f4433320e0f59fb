"""Model summary on torch: every sub-craft call's shapes (forward hooks) and the parameters' shapes and dtypes."""

from __future__ import annotations

import torch

from nebulae.aerolog.inspector import layer_record

from . import mode as _mode
from . import tensor as _tensor
from .craft import Craft


def _shapes(tree) -> list[tuple[int, ...]]:
    if isinstance(tree, torch.Tensor):
        return [tuple(tree.shape)]
    if isinstance(tree, dict):
        return [s for v in tree.values() for s in _shapes(v)]
    if isinstance(tree, (list, tuple)):
        return [s for v in tree for s in _shapes(v)]
    return []


def parameters(craft) -> list[tuple[str, tuple[int, ...], str, int, bool]]:
    params = {k.replace(".", "/"): p for k, p in craft.named_parameters()}
    out = [(k, tuple(p.shape), str(p.dtype).removeprefix("torch."), p.element_size(), True) for k, p in params.items()]
    for key, value in craft.state_dict().items():
        key = key.replace(".", "/")
        if key not in params and not key.endswith("_extra_state") and isinstance(value, torch.Tensor):
            out.append((key, tuple(value.shape), str(value.dtype).removeprefix("torch."), value.element_size(), False))
    return out


def layer_calls(craft, args: tuple, kwargs: dict) -> list[dict]:  # by forward hooks
    paths = {}
    for name, module in craft.named_modules():
        if isinstance(module, Craft):
            paths.setdefault(id(module), name.replace(".", "/"))
    records: list[dict] = []
    stack: list[int] = []

    def before(module, a, k):
        stack.append(len(records))
        weight = getattr(module, "weight", None)
        weight = tuple(weight.shape) if isinstance(weight, torch.Tensor) else None
        records.append(layer_record(paths.get(id(module), ""), module, len(stack) - 1, _shapes((a, k)), weight))

    def after(module, a, k, out):
        records[stack.pop()]["outputs"] = _shapes(out)

    handles = []
    try:
        for module in craft.modules():
            if isinstance(module, Craft):
                handles.append(module.register_forward_pre_hook(before, with_kwargs=True))
                handles.append(module.register_forward_hook(after, with_kwargs=True))
        args, kwargs = _tensor.coat(tuple(args)) if args else (), _tensor.coat(dict(kwargs)) if kwargs else {}
        with _mode.Nozzle():
            craft(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return records


def export_onnx(craft, args: tuple, kwargs: dict, path: str, opset: int) -> None:
    args = _tensor.coat(tuple(args)) if args else ()
    kwargs = _tensor.coat(dict(kwargs)) if kwargs else {}
    with _mode.Nozzle():
        torch.onnx.export(craft, args, path, kwargs=kwargs or None, opset_version=opset)
