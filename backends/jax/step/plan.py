"""A top-level craft's Plan: graphdef, Variables in leaf order, the updaters in its graph, its jit cache.

Plans are rebuilt after a structural change (`bump`); compile statistics survive the rebuild.
"""

from __future__ import annotations

import itertools
import weakref
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import nnx

from .. import universe
from .update import Updater

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


@dataclass
class Stats:
    """Per-craft compile statistics, kept across plan rebuilds."""

    traces: int = 0
    compile_seconds: float = 0.0


def crafts_of(craft) -> list:
    """Every craft in `craft`'s graph (itself first), in graph order."""
    return [m for _, m in nnx.iter_graph(craft) if hasattr(m, "_uid") and isinstance(m, nnx.Module)]


class Plan:
    """The flattened view of one top-level craft."""

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
        for v in self.variables:  # donation needs distinct buffers: give shared ones their own copy
            raw = v.get_raw_value()
            if id(raw) in seen:
                v.set_raw_value(jnp.array(raw, copy=True))
            place = universe.placement(raw)  # under a Multiverse: replicated, or split (shard='params')
            if place is not None and getattr(raw, "sharding", None) != place:
                v.set_raw_value(jax.device_put(v.get_raw_value(), place))
            seen.add(id(raw))
        index = {id(v): i for i, v in enumerate(self.variables)}
        self.param_idx = tuple(i for i, v in enumerate(self.variables) if isinstance(v, nnx.Param))
        self.crafts = crafts_of(craft)
        self.updaters = {
            node._uid: (node, node.plan_info(lambda v, node=node: _index_of(index, v, node, craft)))
            for node in self.crafts
            if isinstance(node, Updater)
        }
        self.diff_idx = tuple(sorted({i for _, info in self.updaters.values() for i in getattr(info, "param_idx", ())}))
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


def _index_of(index: dict, variable, updater, craft) -> int:
    try:
        return index[id(variable)]
    except KeyError:
        raise RuntimeError(
            f"{type(updater).__name__} (scope {getattr(updater, 'scope', '?')!r}) works on a model that is not part "
            f"of {type(craft).__name__}: assign that model as an attribute of the step craft (self.net = net)"
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
