"""The compile part of a compiled step: the cache key, `jax.jit` with donation (off CPU), and the call itself.

Cache key: the outer mode context (plus any in-context `gear()` overrides), the argument
structure and static (non-array) arguments, value checks on/off, the Multiverse mesh and its shard mode;
`jax.jit` adds input shapes and dtypes. The Python cost of a call is a flat loop over the
Variables plus JAX's dispatch.
"""

from __future__ import annotations

import os
import time

import jax
import numpy as np

from nebulae.astro import checks
from nebulae.astro.portable import portable_error

from .. import checks as _checks
from .. import tensor as _tensor
from .. import universe
from .plan import Plan, plan_of
from .trace import Recorder, _local, context_key, make_forward
from .update import probe_step, take_raised, train_step


def _is_array(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic))


def compiled_call(craft, args: tuple, kwargs: dict):
    """Run `craft(*args, **kwargs)` through its cached compiled step and write the new state back.

    Nothing that goes wrong leaves the craft's Variables deleted: tracing happens before any buffer is
    donated, the new state is written back before anything else is looked at, and a step with value
    checks (checkify) or a host callback (either may fail while it runs) is compiled without
    donation; a failed value check keeps the state from before the step.
    """
    plan = plan_of(craft)
    ctx, ctx_key = context_key(plan.crafts)
    leaves, arg_def = jax.tree.flatten((args, kwargs))
    dyn_pos = tuple(i for i, x in enumerate(leaves) if _is_array(x))
    if len(dyn_pos) == len(leaves):
        statics, arrays = (), leaves
    else:
        statics = tuple((i, x) for i, x in enumerate(leaves) if i not in dyn_pos)
        arrays = [leaves[i] for i in dyn_pos]
    arrays = [_tensor.coat(a) if isinstance(a, (np.ndarray, np.generic)) else a for a in arrays]
    probing = ctx_key is not None and ctx_key[0] == "prober"
    wrt = _wrt_positions(ctx, args, dyn_pos) if probing else ()
    checked = checks.enabled()
    key = (ctx_key, arg_def, statics, dyn_pos, wrt, checked, universe.mesh(), universe.shard_mode())
    stats = plan.stats
    before = stats.traces
    start = time.perf_counter()
    _local.calling = stats
    values = plan.values()
    fn = plan.jitted.get(key)
    if fn is None:
        try:
            fn = _compile(_make_step(plan, ctx_key, arg_def, statics, dyn_pos, wrt), checked, values, arrays)
        except Exception as e:
            clear = portable_error(type(craft).__name__, e)  # a torch-only idiom inside run: say so
            if clear is None:
                raise
            raise clear from e
        plan.jitted[key] = fn
    try:
        result = fn(values, arrays)
    except Exception as e:
        pending = take_raised()  # an error an updater raised from a host callback, not JAX's wrapper of it
        if pending is not None:
            raise pending from e
        if any(getattr(v, "is_deleted", lambda: False)() for v in values):
            raise RuntimeError(
                f"{type(craft).__name__}'s compiled step failed while running on the device, after its state "
                "buffers were donated: the craft's weights are lost in this process; restore them from an anchor "
                "(TimeMachine.to) or a weights file"
            ) from e
        raise
    if stats.traces != before:
        stats.compile_seconds += time.perf_counter() - start
    if checked:  # not donated: a failed check keeps the state from before the step, as torch does
        error, result = result
        _checks.throw(error)
    out, new_values = result[0], result[1]
    plan.write(new_values)
    if probing:
        grads = result[2]
        grads["inputs"] = {k: grads["inputs"][pos] for k, pos in zip(ctx.wrt, wrt)}
        ctx.grads = grads
    return out


def _compile(step, checked: bool, values, arrays):
    """jit `step` (checkified when value checks are on), tracing it now, before any buffer is donated.

    A checked step, or one with a host callback, is jitted without donation: a failure while it runs
    would otherwise take the donated state with it. State on CPU is not donated either: XLA:CPU copies
    donated buffers instead of reusing them (ResNet-18: 186 extra copies, 128 MB a step; the step runs
    13 % faster without donation on this project's CPU benchmark), while on GPU/TPU donation halves the
    state's memory.
    """
    if checked:
        step = _checks.checked(step)
    fn = jax.jit(step, donate_argnums=0 if _donates(values) else ())
    traced = fn.trace(values, arrays)
    if checked or _calls_back(traced.jaxpr.jaxpr):
        fn = jax.jit(step)  # JAX reuses the trace just made
    return fn


def _donates(values) -> bool:
    """Whether a step over state `values` donates it: NEB_JAX_DONATE=1 (always) or 0 (never), else unless
    every array lives on a CPU device. Read when a step is compiled."""
    forced = os.environ.get("NEB_JAX_DONATE", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    platforms = {d.platform for v in values if isinstance(v, jax.Array) for d in v.devices()}
    return bool(platforms - {"cpu"})


def _calls_back(jaxpr) -> bool:
    """Whether a jaxpr (or any jaxpr nested in it) calls back to the host."""
    for eqn in jaxpr.eqns:
        if "callback" in eqn.primitive.name:
            return True
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns") and _calls_back(inner):
                    return True
    return False


def _wrt_positions(ctx, args, dyn_pos) -> tuple[int, ...]:
    """Positions, among the array arguments, of the positional arguments a Prober asks gradients for."""
    ctx.check_wrt(args, _is_array)
    positions = []
    for k in ctx.wrt:
        offset = sum(len(jax.tree.leaves(a)) for a in args[:k])
        positions.append(dyn_pos.index(offset))
    return tuple(positions)


def _make_step(plan: Plan, ctx_key, arg_def, statics, dyn_pos, wrt):
    """The function `jax.jit` compiles: forward, then the train or probe update as the mode asks."""
    kind = ctx_key[0] if ctx_key else None
    forward = make_forward(plan, ctx_key, arg_def, statics, dyn_pos)
    place = universe.placement if universe.mesh() is not None else None

    def step(values, arrays):
        _local.calling.traces += 1
        if kind == "nozzle" or (kind != "prober" and not plan.diff_idx):
            result = forward(values, arrays, Recorder())
        elif kind == "prober":
            result = probe_step(plan, forward, values, arrays, wrt)
        else:
            result = train_step(plan, forward, values, arrays)
        if place is not None:  # the new state keeps its placement on the Multiverse's mesh (replicated or split)
            state = [jax.lax.with_sharding_constraint(v, place(v)) for v in result[1]]
            result = (result[0], state, *result[2:])
        return result

    return step
