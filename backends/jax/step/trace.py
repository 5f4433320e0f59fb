"""The trace part of a compiled step: what `run` records while traced, and the forward function.

While a step is traced, `optz(loss)` records its objective and `EMA.update()` defers its fold on
the Recorder of this thread; `forward` rebuilds the craft from the flat state (`nnx.merge`), runs
it under the caller's mode context and returns the outputs with the new flat state.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
from flax import nnx

from nebulae.astro import gearbox

_local = threading.local()


def recorder() -> Recorder | None:
    """The recorder of the trace in progress, or None outside a trace."""
    return getattr(_local, "recorder", None)


def tracing() -> bool:
    """Whether a compiled step is being traced on this thread."""
    return getattr(_local, "recorder", None) is not None


@dataclass
class Recorder:
    """What a trace of `run` noted: objectives named by `optz(loss)`, and updaters deferred past the update."""

    objectives: list = field(default_factory=list)  # (updater uid, scalar loss)
    deferred: list = field(default_factory=list)  # updater uids whose `after_update` runs post-update

    def objective(self, uid: int, loss) -> None:
        """Record `loss` as the objective of the optimizer with this uid."""
        if any(u == uid for u, _ in self.objectives):
            raise RuntimeError("the same optimizer was called twice in one step; sum the losses first")
        if jnp.ndim(loss) != 0:
            raise ValueError(f"optz(loss) needs a scalar loss, got shape {jnp.shape(loss)}")
        self.objectives.append((uid, loss))

    def defer(self, uid: int) -> None:
        """Run the updater's `after_update` (EMA.update) after the optimizer updates."""
        if uid not in self.deferred:
            self.deferred.append(uid)


class Tracing:
    """`with Tracing(recorder):` a trace of `run` is in progress on this thread, recording on `recorder`."""

    def __init__(self, rec: Recorder):
        self.rec = rec

    def __enter__(self):
        self.prev = getattr(_local, "recorder", None)
        _local.recorder = self.rec
        return self.rec

    def __exit__(self, *exc):
        _local.recorder = self.prev
        return False


def context_key(crafts: list):
    """(the active mode context, its part of the cache key): its kind, plus per-craft gears when overridden."""
    ctx = gearbox.active()
    if ctx is None:
        return None, None
    if not any(ctx.overrides for ctx in gearbox._stack()):
        return ctx, (ctx.kind, None)
    flags = tuple(gearbox.gear_of(m, m._training) for m in crafts)  # Gear(training, stats) per craft
    return ctx, (ctx.kind, flags)


def rebuild_args(arg_def, statics, dyn_pos, arrays):
    """The call's (args, kwargs) from its static leaves and its array leaves."""
    n = len(statics) + len(dyn_pos)
    leaves = [None] * n
    for i, x in statics:
        leaves[i] = x
    for i, x in zip(dyn_pos, arrays):
        leaves[i] = x
    return jax.tree.unflatten(arg_def, leaves)


def make_forward(plan, ctx_key, arg_def, statics, dyn_pos):
    """forward(values, arrays, recorder) -> (outputs, new flat state): the craft rebuilt and run once."""
    from .plan import crafts_of

    graphdef, treedef = plan.graphdef, plan.treedef
    kind, flags = ctx_key if ctx_key else (None, None)
    mode_cls = None if kind is None else gearbox.MODES[kind]

    def forward(values, arrays, rec: Recorder):
        model = nnx.merge(graphdef, jax.tree.unflatten(treedef, values))
        args, kwargs = rebuild_args(arg_def, statics, dyn_pos, arrays)
        with Tracing(rec):
            if mode_cls is None:
                out = model(*args, **kwargs)
            else:
                with mode_cls() as ctx:
                    if flags is not None:
                        for m, flag in zip(crafts_of(model), flags):
                            ctx.overrides[id(m)] = flag
                    out = model(*args, **kwargs)
        new_leaves, new_def = jax.tree.flatten(nnx.state(model))
        if new_def != treedef:
            raise RuntimeError(
                f"{type(model).__name__}.run changed the craft's structure (added or replaced a Variable or "
                "sub-craft); build every layer and variable in __init__"
            )
        return out, new_leaves

    return forward
