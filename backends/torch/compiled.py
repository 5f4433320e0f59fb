"""`craft.compile()` on torch: a step craft's forward (its whole `run`, losses and `optz(loss)` records included)
runs through `torch.compile`; the backward of that graph is compiled with it (AOTAutograd), while the
differentiation order, the optimizers' updates, `grad_accum`, loss scaling and the non-finite guard stay the
eager step's (backends/torch/step.py), so a compiled step updates exactly as the eager one.

Not compiled: the optimizer update. The scheduled learning rate is a Python float that changes every step (a
recompile each step unless every rate became a tensor), the non-finite guard reads a flag on the host, and on a
CPU each extra inductor graph costs tens of seconds of C++ compilation.

`craft.traces` counts dynamo compilations of the step (one per frame traced: 1 for a graph-break-free step at a
fixed input signature; a new shape, dtype or grad mode adds one), `craft.compile_seconds` their seconds
(tracing and inductor compilation, forward and backward), measured by dynamo's compile callbacks while the
step runs on this thread.
"""

from __future__ import annotations

import threading
import time
import types

import torch
from torch._dynamo import callback as _callback

from . import step as _step

__all__: list[str] = []

ATTR = "_compiled_step"  # a craft's torch.compile'd forward, dropped when the craft is pickled or copied
STATS = "_compile_stats"  # [traces, seconds]

_local = threading.local()
_hooked = threading.Lock()
_installed = False


def top_call(craft, args: tuple, kwargs: dict):
    """Run `craft(*args, **kwargs)` as a step whose forward is `craft`'s compiled one (made on first use with the
    options of its `compile(**options)`); compilations during the call are counted for `craft`."""
    fn = craft.__dict__.get(ATTR)
    if fn is None:
        _install_callbacks()
        fn = craft.__dict__[ATTR] = torch.compile(_own_forward(craft), **craft._compile_options)
    outer = getattr(_local, "craft", None)
    _local.craft = craft
    try:
        return _step.top_call(craft, fn, args, kwargs)
    finally:
        _local.craft = outer


def _own_forward(craft) -> types.MethodType:
    """`craft._forward` on a copy of its code object: dynamo keeps compiled graphs, and its recompile limit (8),
    per code object, so crafts sharing `Craft._forward`'s would fall back to eager after the eighth."""
    fn = craft._forward.__func__
    code = fn.__code__.replace()
    return types.MethodType(
        types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__), craft
    )


def stats(craft) -> list:
    """[traces, seconds] of `craft`'s compiled step (zeros before its first compiled call)."""
    return craft.__dict__.get(STATS, [0, 0.0])


def forget(state: dict) -> None:
    """Drop the compiled forward and counters from a craft's `__dict__` (or its pickled state)."""
    state.pop(ATTR, None)
    state.pop(STATS, None)


def _install_callbacks() -> None:
    global _installed
    with _hooked:
        if not _installed:
            _callback.callback_handler.register_start_callback(_started)
            _callback.callback_handler.register_end_callback(_ended)
            _installed = True


def _started(args) -> None:
    if getattr(_local, "craft", None) is not None:
        _local.began = time.perf_counter()


def _ended(args) -> None:
    craft = getattr(_local, "craft", None)
    began = getattr(_local, "began", None)
    if craft is None or began is None:
        return
    _local.began = None
    counters = craft.__dict__.setdefault(STATS, [0, 0.0])
    counters[0] += args.callback_trigger == _callback.CallbackTrigger.DYNAMO
    counters[1] += time.perf_counter() - began
