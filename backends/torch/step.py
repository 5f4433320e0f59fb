"""The step on torch: a top-level craft call, run eagerly, with the JAX step's update rules.

A craft called from Python (not from inside another craft's `run`) is a step. While it runs,
`optz(loss)` only records its objective and `EMA.update()` is deferred; when `run` returns, every
objective is differentiated with respect to ITS optimizer's parameters alone (`backward(inputs=…)`,
so no optimizer sees another one's gradient), then the optimizers update, then the EMAs fold in
the new weights. This is what the compiled JAX step does, so a step written once updates the same
way on both engines: several optimizers in one `run` differentiate the same forward and update
simultaneously, and code after `optz(loss)` sees the weights from before the update.

Under a Prober, a top-level call returns the gradients of the step's scalar with respect to the
parameters (and the `wrt` inputs); optimizers and EMAs apply nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import torch

from nebulae.astro import gearbox

from . import tensor

__all__: list[str] = []

_local = threading.local()


@dataclass
class Call:
    """A top-level craft call in progress: what its `run` recorded for after it returns."""

    objectives: list = field(default_factory=list)  # (optimizer, scalar loss)
    deferred: list = field(default_factory=list)  # EMAs to fold after the updates

    def objective(self, optimizer, loss: torch.Tensor) -> None:
        """Record `loss` as `optimizer`'s objective."""
        if any(o is optimizer for o, _ in self.objectives):
            raise RuntimeError("the same optimizer was called twice in one step; sum the losses first")
        self.objectives.append((optimizer, loss))

    def defer(self, ema) -> None:
        """Fold `ema` after the updates of this step."""
        if not any(e is ema for e in self.deferred):
            self.deferred.append(ema)

    def finish(self) -> None:
        """Differentiate every objective, then update, then fold the EMAs (the JAX step's order)."""
        last = len(self.objectives) - 1
        for n, (optimizer, loss) in enumerate(self.objectives):
            optimizer.differentiate(loss, retain_graph=n < last)
        for optimizer, _ in self.objectives:
            optimizer.update()
        for ema in self.deferred:
            ema.fold()


def current() -> Call | None:
    """The top-level call in progress on this thread, or None outside any craft call."""
    return getattr(_local, "call", None)


def top_call(craft, forward, args: tuple, kwargs: dict):
    """Run `craft(*args, **kwargs)` as a step: host arrays coated, objectives and deferred actions applied after."""
    args, kwargs = _coat_host((args, kwargs))
    ctx = gearbox.active()
    probing = ctx is not None and ctx.kind == "prober"
    _local.call = call = Call()
    try:
        if probing:
            return _probe(craft, forward, ctx, args, kwargs)
        out = forward(args, kwargs)
        call.finish()
        return out
    finally:
        _local.call = None


def _coat_host(tree):
    """NumPy arrays and scalars in a top-level call's arguments go to the engine's device, as `coat` puts them."""
    if isinstance(tree, (np.ndarray, np.generic)):
        return tensor._coat(tree)
    if isinstance(tree, tuple):
        return tuple(_coat_host(v) for v in tree)
    if isinstance(tree, list):
        return [_coat_host(v) for v in tree]
    if isinstance(tree, dict):
        return {k: _coat_host(v) for k, v in tree.items()}
    return tree


def _probe(craft, forward, ctx, args, kwargs):
    """Gradients of the step's scalar output w.r.t. its parameters and the `wrt` inputs; nothing is updated."""
    ctx.check_wrt(args, lambda a: isinstance(a, torch.Tensor))
    args = list(args)
    for i in ctx.wrt:
        args[i] = args[i].detach().requires_grad_(True)
    with torch.enable_grad():
        out = forward(tuple(args), kwargs)
        target = out[0] if isinstance(out, (tuple, list)) else out
        ctx.check_scalar(tuple(target.shape) if isinstance(target, torch.Tensor) else None)
        named = [(k.replace(".", "/"), p) for k, p in craft.named_parameters() if p.requires_grad]
        leaves = [args[i] for i in ctx.wrt] + [p for _, p in named]
        grads = torch.autograd.grad(target.reshape(()), leaves, allow_unused=True) if target.requires_grad else None
    if grads is None:
        grads = [None] * len(leaves)
    n = len(ctx.wrt)
    ctx.grads = {
        "inputs": {i: (g if g is not None else torch.zeros_like(args[i])) for i, g in zip(ctx.wrt, grads[:n])},
        "params": {k: (g if g is not None else torch.zeros_like(p)) for (k, p), g in zip(named, grads[n:])},
    }
    return out
