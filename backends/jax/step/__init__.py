"""The compiled step: every top-level craft call becomes ONE cached `jax.jit` over the flat state.

In four parts:
- `plan`: the flattened view of a top-level craft (its Variables in leaf order, the updaters in its graph);
- `trace`: what a trace of `run` records (objectives of `optz(loss)`, deferred EMA folds) and the forward
  function that rebuilds the craft from the flat state and runs it;
- `update`: the `Updater` protocol of optimizers and EMA, and the train/probe steps that differentiate the
  objectives and let the updaters change the flat state;
- `compile`: the cache key, `jax.jit` with donation, and the call that writes the new state back.
"""

from .compile import compiled_call
from .plan import bump, compile_seconds, new_uid, trace_count
from .trace import Recorder, Tracing, recorder, tracing
from .update import Updater

__all__ = [
    "compiled_call",
    "bump",
    "compile_seconds",
    "new_uid",
    "trace_count",
    "Recorder",
    "Tracing",
    "recorder",
    "tracing",
    "Updater",
]
