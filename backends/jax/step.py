"""The compiled step: every top-level craft call becomes ONE cached `jax.jit` over the flat state.

Calling a craft from Python (outside a trace) looks up its Plan: the Variables of its graph,
flattened once, in leaf order. Their raw values are passed to a jitted function (donated), which
rebuilds the craft with `nnx.merge`, runs the user's `run`, differentiates the objectives that
`optz(loss)` recorded with `jax.vjp`, lets optimizers and EMAs apply their updates functionally,
and returns the outputs with the new state values. The values are written back into the same
Variable objects, so crafts that share a model stay coherent. The Python cost of a call is a
flat loop over the Variables plus JAX's dispatch.

Cache key: the outer mode context (plus any in-context `gear()` overrides), the argument
structure and static (non-array) arguments; `jax.jit` adds input shapes and dtypes.
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nebulae.astro import checks, gearbox

from . import checks as _checks
from . import tensor as _tensor
from . import universe

__all__: list[str] = []

_local = threading.local()
_uids = itertools.count(1)
_epoch = [0]
_plans: dict[int, Plan] = {}
_stats: dict[int, Stats] = {}
_compiled: dict[tuple, dict] = {}  # (graphdef, treedef) -> {call key: jitted step}; shared by all plans
_osa = object.__setattr__


def new_uid() -> int:
    """A process-unique id for a craft; static, so merged copies inside a trace keep it."""
    return next(_uids)


def bump() -> None:
    """Note a structural change (attribute set outside a trace): plans re-split on their next call."""
    _epoch[0] += 1


def recorder() -> Recorder | None:
    """The recorder of the trace in progress, or None outside a trace."""
    return getattr(_local, "recorder", None)


def tracing() -> bool:
    """Whether a compiled step is being traced on this thread."""
    return getattr(_local, "recorder", None) is not None


@dataclass
class Recorder:
    """What a trace of `run` noted: objectives named by `optz(loss)`, and actions deferred past the update."""

    objectives: list = field(default_factory=list)  # (helper uid, scalar loss)
    deferred: list = field(default_factory=list)  # helper uids whose `after_update` runs post-update

    def objective(self, uid: int, loss) -> None:
        """Record `loss` as the objective of the optimizer with this uid."""
        if any(u == uid for u, _ in self.objectives):
            raise RuntimeError("the same optimizer was called twice in one step; sum the losses first")
        if jnp.ndim(loss) != 0:
            raise ValueError(f"optz(loss) needs a scalar loss, got shape {jnp.shape(loss)}")
        self.objectives.append((uid, loss))

    def defer(self, uid: int) -> None:
        """Run the helper's post-update action (EMA.update) after the optimizer updates."""
        if uid not in self.deferred:
            self.deferred.append(uid)


class _Trace:
    def __init__(self, rec: Recorder):
        self.rec = rec

    def __enter__(self):
        self.prev = getattr(_local, "recorder", None)
        _local.recorder = self.rec
        return self.rec

    def __exit__(self, *exc):
        _local.recorder = self.prev
        return False


def _is_array(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic))


@dataclass
class Stats:
    """Per-craft compile statistics, kept across plan rebuilds."""

    traces: int = 0
    compile_seconds: float = 0.0


class Plan:
    """The flattened view of one top-level craft: graphdef, Variables in leaf order, helpers, jit cache."""

    def __init__(self, craft, stats: Stats):
        self.epoch = _epoch[0]
        self.stats = stats
        self.graphdef, state = nnx.split(craft)
        leaves_with_path, self.treedef = jax.tree_util.tree_flatten_with_path(state)
        by_path = {tuple(p): v for p, v in nnx.iter_graph(craft) if isinstance(v, nnx.Variable)}
        self.paths = [_graph_path(p) for p, _ in leaves_with_path]
        try:
            self.variables = [by_path[p] for p in self.paths]
        except KeyError as e:
            raise RuntimeError(f"nebulae: cannot map state leaf {e} of {type(craft).__name__} to a Variable") from None
        self.fast = all(hasattr(v, "_raw_value") for v in self.variables)  # a slot on flax 0.12
        seen: set[int] = set()
        place = universe.replicated()
        for v in self.variables:  # donation needs distinct buffers: give shared ones their own copy
            raw = v.get_raw_value()
            if id(raw) in seen:
                v.set_raw_value(jnp.array(raw, copy=True))
            if place is not None and getattr(raw, "sharding", None) != place:  # under a Multiverse: replicated
                v.set_raw_value(jax.device_put(v.get_raw_value(), place))
            seen.add(id(raw))
        index = {id(v): i for i, v in enumerate(self.variables)}
        self.param_idx = tuple(i for i, v in enumerate(self.variables) if isinstance(v, nnx.Param))
        self.crafts = [m for _, m in nnx.iter_graph(craft) if hasattr(m, "_uid") and isinstance(m, nnx.Module)]
        self.helpers = {}
        for node in self.crafts:
            if hasattr(node, "plan_info"):
                self.helpers[node._uid] = (node, node.plan_info(lambda v, node=node: _index_of(index, v, node, craft)))
        self.diff_idx = tuple(sorted({i for h, info in self.helpers.values() for i in getattr(info, "param_idx", ())}))
        self.jitted = _compiled.setdefault((self.graphdef, self.treedef), {})

    def values(self) -> list:
        """The current raw values of the Variables, in leaf order."""
        return [v.get_raw_value() for v in self.variables]

    def write(self, values) -> None:
        """Write new raw values back into the same Variable objects."""
        if self.fast:
            for v, a in zip(self.variables, values):
                _osa(v, "_raw_value", a)
        else:
            for v, a in zip(self.variables, values):
                v.set_raw_value(a)


def _graph_path(keypath) -> tuple:
    """A state leaf's key path as nnx graph path (dict keys and indices; attribute keys are Variable internals)."""
    out = []
    for k in keypath:
        if isinstance(k, jax.tree_util.DictKey):
            out.append(k.key)
        elif isinstance(k, jax.tree_util.SequenceKey):
            out.append(k.idx)
    return tuple(out)


def _index_of(index: dict, variable, helper, craft) -> int:
    try:
        return index[id(variable)]
    except KeyError:
        raise RuntimeError(
            f"{type(helper).__name__} (scope {getattr(helper, 'scope', '?')!r}) works on a model that is not part of "
            f"{type(craft).__name__}: assign that model as an attribute of the step craft (self.net = net)"
        ) from None


def plan_of(craft) -> Plan:
    """The craft's current Plan, rebuilt after structural changes."""
    plan = _plans.get(id(craft))
    if plan is None or plan.epoch != _epoch[0]:
        stats = _stats.get(id(craft))
        if stats is None:
            stats = _stats[id(craft)] = Stats()
            weakref.finalize(craft, _forget, id(craft))
        _plans[id(craft)] = plan = Plan(craft, stats)
    return plan


def _forget(key: int) -> None:
    _plans.pop(key, None)
    _stats.pop(key, None)


def trace_count(craft) -> int:
    """How many times this craft's step has been traced (compiled) so far."""
    stats = _stats.get(id(craft))
    return stats.traces if stats is not None else 0


def compile_seconds(craft) -> float:
    """Seconds spent in calls that traced and compiled this craft's step."""
    stats = _stats.get(id(craft))
    return stats.compile_seconds if stats is not None else 0.0


def _context_key(plan: Plan):
    ctx = gearbox.active()
    if ctx is None:
        return None, None
    if not any(ctx.overrides for ctx in gearbox._stack()):
        return ctx, (ctx.kind, None)
    flags = tuple(gearbox.gear_of(m, m._training) for m in plan.crafts)  # Gear(training, stats) per craft
    return ctx, (ctx.kind, flags)


def compiled_call(craft, args: tuple, kwargs: dict):
    """Run `craft(*args, **kwargs)` through its cached compiled step and write the new state back.

    Nothing that goes wrong leaves the craft's Variables deleted: tracing happens before any buffer is
    donated, the new state is written back before anything else is looked at, and a step with value
    checks (checkify) or a host callback (either may fail while it runs) is compiled without
    donation; a failed value check keeps the state from before the step.
    """
    plan = plan_of(craft)
    ctx, ctx_key = _context_key(plan)
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
    key = (ctx_key, arg_def, statics, dyn_pos, wrt, checked, universe.mesh())
    stats = plan.stats
    before = stats.traces
    start = time.perf_counter()
    _local.calling = stats
    values = plan.values()
    fn = plan.jitted.get(key)
    if fn is None:
        fn = plan.jitted[key] = _compile(
            _make_step(plan, ctx_key, arg_def, statics, dyn_pos, wrt), checked, values, arrays
        )
    try:
        result = fn(values, arrays)
    except Exception as e:
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
    would otherwise take the donated state with it.
    """
    if checked:
        step = _checks.checked(step)
    fn = jax.jit(step, donate_argnums=0)
    traced = fn.trace(values, arrays)
    if checked or _calls_back(traced.jaxpr.jaxpr):
        fn = jax.jit(step)  # JAX reuses the trace just made
    return fn


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


def _current_stats() -> Stats:
    return _local.calling


def _wrt_positions(ctx, args, dyn_pos) -> tuple[int, ...]:
    """Positions, among the array arguments, of the positional arguments a Prober asks gradients for."""
    positions = []
    for k in ctx.wrt:
        if k >= len(args) or not _is_array(args[k]):
            raise TypeError(f"Prober(wrt={ctx.wrt}): positional argument {k} is not an array")
        offset = sum(len(jax.tree.leaves(a)) for a in args[:k])
        positions.append(dyn_pos.index(offset))
    return tuple(positions)


def _rebuild_args(arg_def, statics, dyn_pos, arrays):
    n = len(statics) + len(dyn_pos)
    leaves = [None] * n
    for i, x in statics:
        leaves[i] = x
    for i, x in zip(dyn_pos, arrays):
        leaves[i] = x
    return jax.tree.unflatten(arg_def, leaves)


def _make_step(plan: Plan, ctx_key, arg_def, statics, dyn_pos, wrt):
    graphdef, treedef = plan.graphdef, plan.treedef
    kind = ctx_key[0] if ctx_key else None
    flags = ctx_key[1] if ctx_key else None
    mode_cls = None
    if kind is not None:
        from . import mode as _mode

        mode_cls = {"rudder": _mode.Rudder, "prober": _mode.Prober, "nozzle": _mode.Nozzle}[kind]

    def forward(values, arrays, rec: Recorder):
        model = nnx.merge(graphdef, jax.tree.unflatten(treedef, values))
        args, kwargs = _rebuild_args(arg_def, statics, dyn_pos, arrays)
        with _Trace(rec):
            if mode_cls is None:
                out = model(*args, **kwargs)
            else:
                with mode_cls() as ctx:
                    if flags is not None:
                        copies = [
                            m for _, m in nnx.iter_graph(model) if hasattr(m, "_uid") and isinstance(m, nnx.Module)
                        ]
                        for m, flag in zip(copies, flags):
                            ctx.overrides[id(m)] = flag
                    out = model(*args, **kwargs)
        new_leaves, new_def = jax.tree.flatten(nnx.state(model))
        if new_def != treedef:
            raise RuntimeError(
                f"{type(model).__name__}.run changed the craft's structure (added or replaced a Variable or "
                "sub-craft); build every layer and variable in __init__"
            )
        return out, new_leaves

    def step(values, arrays):
        _current_stats().traces += 1
        if kind == "nozzle" or (kind != "prober" and not plan.diff_idx):
            result = forward(values, arrays, Recorder())
        elif kind == "prober":
            result = _probe_step(plan, forward, values, arrays, wrt)
        else:
            result = _train_step(plan, forward, values, arrays)
        if place is not None:  # the new state stays replicated on the Multiverse's mesh
            result = (result[0], jax.lax.with_sharding_constraint(result[1], place), *result[2:])
        return result

    place = universe.replicated()
    return step


def _train_step(plan: Plan, forward, values, arrays):
    """Differentiate every recorded objective w.r.t. its optimizer's parameters, then update."""
    diff_idx = plan.diff_idx
    rec = Recorder()

    def objective_fn(diff_values):
        full = list(values)
        for i, v in zip(diff_idx, diff_values):
            full[i] = v
        out, new_values = forward(full, arrays, rec)
        return tuple(loss for _, loss in rec.objectives), (out, new_values)

    diff_values = [values[i] for i in diff_idx]
    losses, vjp_fn, (out, new_values) = jax.vjp(objective_fn, diff_values, has_aux=True)
    new_values = list(new_values)
    position = {i: k for k, i in enumerate(diff_idx)}
    for n, (uid, _) in enumerate(rec.objectives):
        helper, info = plan.helpers[uid]
        if losses[n].dtype == jnp.float16:
            raise TypeError("the loss is float16; compute losses in float32 (mixp keeps losses in float32)")
        cot = tuple(jnp.ones_like(l) if k == n else jnp.zeros_like(l) for k, l in enumerate(losses))
        (g_all,) = vjp_fn(cot)
        grads = [g_all[position[i]] for i in info.param_idx]
        helper.apply(new_values, grads, info)
    for uid in rec.deferred:
        helper, info = plan.helpers[uid]
        helper.after_update(new_values, info)
    return out, new_values


def _probe_step(plan: Plan, forward, values, arrays, wrt):
    """Gradients of the returned scalar w.r.t. all parameters and the chosen inputs; nothing is updated."""
    param_idx = plan.param_idx
    rec = Recorder()

    def target_fn(param_values, inputs):
        full = list(values)
        for i, v in zip(param_idx, param_values):
            full[i] = v
        args = list(arrays)
        for k, v in zip(wrt, inputs):
            args[k] = v
        out, new_values = forward(full, args, rec)
        target = out[0] if isinstance(out, (tuple, list)) else out
        if jnp.ndim(target) != 0:
            raise ValueError(f"Prober needs the step to return a scalar (first output), got shape {jnp.shape(target)}")
        return target, (out, new_values)

    inputs = [arrays[k] for k in wrt]
    (gp, gi), (out, new_values) = jax.grad(target_fn, argnums=(0, 1), has_aux=True)(
        [values[i] for i in param_idx], inputs
    )
    grads = {
        "inputs": dict(zip(wrt, gi)),
        "params": {"/".join(str(p) for p in plan.paths[i]): g for i, g in zip(param_idx, gp)},
    }
    return out, new_values, grads
