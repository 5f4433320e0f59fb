"""The optimizer base on JAX (the optimizers are written once in nebulae/astro/crafts/updaters.py).

Inside a compiled step, `optz(loss)` only records `loss` as this optimizer's objective; the step
differentiates it with respect to this optimizer's parameters and calls `apply`, which runs the
optax update functionally on the flat state (see `step/update.py`). Chains apply the learning rate
last, so the update order equals torch.optim's (see `nebulae.astro.optconf`).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from nebulae.astro import optconf, statedict
from nebulae.astro.crafts.updaters import check_chosen

from . import step as _step
from .craft import Craft

__all__: list[str] = []  # the dock binds the front optimizers to `Updater`


class OptSlot(nnx.Variable):
    """Optimizer state: optax slots, counters and the loss scale."""


@dataclass(frozen=True)
class OptInfo:
    """Positions, in the step's flat state, of what one optimizer reads and writes."""

    param_idx: tuple[int, ...]
    slot_idx: tuple[int, ...]
    calls_idx: int
    scale_idx: tuple[int, ...]  # (scale, good steps) under mixp, else ()


def _chain(conf: optconf.OptConf) -> optax.GradientTransformation:
    a, wd = conf.args, conf.wd
    coupled = [optax.add_decayed_weights(wd)] if wd else []
    decoupled = [optax.add_decayed_weights(wd)] if wd else []
    name = conf.algorithm
    if name in ("Momentum", "Nesterov"):
        core = [*coupled, optax.trace(decay=a["mmnt"], nesterov=name == "Nesterov")]
    elif name == "RMSProp":
        core = [*coupled, optax.scale_by_rms(decay=a["alpha"], eps=a["eps"], eps_in_sqrt=False)]
        if a["mmnt"]:
            core.append(optax.trace(decay=a["mmnt"]))
    elif name == "Adam":
        core = [*coupled, optax.scale_by_adam(b1=a["mmnt1"], b2=a["mmnt2"], eps=a["eps"])]
    elif name == "AdamW":
        core = [optax.scale_by_adam(b1=a["mmnt1"], b2=a["mmnt2"], eps=a["eps"]), *decoupled]
    elif name == "Lion":
        core = [optax.scale_by_lion(b1=a["mmnt1"], b2=a["mmnt2"]), *decoupled]
    elif name == "Adadelta":
        core = [*coupled, optax.scale_by_adadelta(rho=a["rho"], eps=a["eps"])]
    elif name == "Adagrad":
        core = [*coupled, _scale_by_torch_adagrad(a["initial_accumulator_value"], a["eps"])]
    else:
        core = [
            optax.scale_by_adam(b1=a["mmnt1"], b2=a["mmnt2"], eps=a["eps"]),
            *decoupled,
            optax.scale_by_trust_ratio(),
        ]
    clip = [optax.clip_by_global_norm(conf.grad_limit)] if conf.grad_limit > 0 else []
    tx = optax.chain(*clip, *core, optax.scale_by_learning_rate(lambda t: conf.rate(t, jnp)))
    if conf.grad_accum > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=conf.grad_accum).gradient_transformation()
    return tx


def _scale_by_torch_adagrad(initial: float, eps: float) -> optax.GradientTransformation:
    """torch.optim.Adagrad's scaling: g / (sqrt(sum of g²) + eps), the sum starting at `initial`."""

    def init(params):
        return [jnp.full_like(p, initial) for p in params]

    def update(grads, state, params=None):
        state = [s + g * g for s, g in zip(state, grads)]
        return [g / (jnp.sqrt(s) + eps) for g, s in zip(grads, state)], state

    return optax.GradientTransformation(init, update)


class Updater(Craft):
    """The JAX side of an optimizer (nebulae.astro.crafts.updaters.OptimizerEngine and the step's `Updater`)."""

    def attach(self, hull: Craft) -> None:
        self._hull = weakref.ref(hull)  # static and outside the graph: the hull's weights keep their own paths
        named = [(k, v) for k, v in _params_of(hull) if statedict.within(k, self.conf.update_scope)]
        check_chosen(self, hull, named)
        self._paths = tuple(k for k, _ in named)
        self._tx = _chain(self.conf)
        leaves, self._slot_def = jax.tree.flatten(self._tx.init([v.get_value() for _, v in named]))
        self.slots = nnx.List([OptSlot(leaf) for leaf in leaves])
        self.calls = OptSlot(jnp.zeros((), jnp.int32))
        if self.conf.mixp:
            self.scale = OptSlot(jnp.asarray(optconf.SCALER["init"], jnp.float32))
            self.good = OptSlot(jnp.zeros((), jnp.int32))

    def hull_params(self) -> list[nnx.Variable]:
        """The hull's Param Variables this optimizer updates, in a fixed order."""
        hull = self._hull()
        if hull is None:
            raise RuntimeError(f"{type(self).__name__}: its model no longer exists")
        own = dict(_params_of(hull))
        return [own[k] for k in self._paths]

    def check_call(self) -> None:
        if _step.recorder() is None:
            raise RuntimeError(
                f"{type(self).__name__}(loss) must be called inside a step craft's run on JAX "
                "(the step differentiates and updates); call the step craft from the loop"
            )

    def record(self, loss) -> None:
        loss = jnp.asarray(loss, jnp.float32)
        if self.conf.mixp:
            loss = loss * self.scale.get_value()
        _step.recorder().objective(self._uid, loss)

    def plan_info(self, index_of) -> OptInfo:
        """Where this optimizer's parameters and state sit in a step's flat state."""
        scale = (index_of(self.scale), index_of(self.good)) if self.conf.mixp else ()
        return OptInfo(
            tuple(index_of(v) for v in self.hull_params()),
            tuple(index_of(v) for v in self.slots),
            index_of(self.calls),
            scale,
        )

    def apply(self, values: list, grads: list, info: OptInfo) -> None:
        """Run one optax update on the flat state `values` (in place), given gradients of the objective."""
        params = [values[i] for i in info.param_idx]
        state = jax.tree.unflatten(self._slot_def, [values[i] for i in info.slot_idx])
        grads = [g.astype(p.dtype) for g, p in zip(grads, params)]
        if self.conf.mixp:
            scale, good = values[info.scale_idx[0]], values[info.scale_idx[1]]
            grads = [g / scale for g in grads]
            finite = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(g)) for g in grads]))
            grads = [jnp.where(finite, g, 0) for g in grads]
        updates, new_state = self._tx.update(grads, state, params)
        new_params = [p + u.astype(p.dtype) for p, u in zip(params, updates)]
        new_slots = jax.tree.leaves(new_state)
        if self.conf.mixp:
            keep = lambda new, old: jnp.where(finite, new, old)  # noqa: E731
            new_params = [keep(n, o) for n, o in zip(new_params, params)]
            new_slots = [keep(n, values[i]) for n, i in zip(new_slots, info.slot_idx)]
            grown = good + 1 >= optconf.SCALER["interval"]
            values[info.scale_idx[0]] = jnp.where(
                finite, jnp.where(grown, scale * optconf.SCALER["growth"], scale), scale * optconf.SCALER["backoff"]
            )
            values[info.scale_idx[1]] = jnp.where(finite & ~grown, good + 1, 0)
        for i, v in zip(info.param_idx, new_params):
            values[i] = v
        for i, v in zip(info.slot_idx, new_slots):
            values[i] = v
        counted = finite.astype(jnp.int32) if self.conf.mixp else 1
        values[info.calls_idx] = values[info.calls_idx] + counted

    @property
    def updates(self) -> int:
        return int(self.calls.get_value()) // self.conf.grad_accum

    @property
    def loss_scale(self) -> float:
        return float(self.scale.get_value()) if self.conf.mixp else 1.0


def _params_of(hull) -> list[tuple[str, nnx.Param]]:
    return [("/".join(str(p) for p in path), v) for path, v in nnx.iter_graph(hull) if isinstance(v, nnx.Param)]
