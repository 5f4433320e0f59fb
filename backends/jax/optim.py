"""The optimizer base on JAX (the optimizers are written once in nebulae/astro/crafts/updaters.py).

Inside a compiled step, `optz(loss)` only records `loss` as this optimizer's objective; the step
differentiates it with respect to this optimizer's parameters and calls `apply`, which runs the
optax update functionally on the flat state (see `step/update.py`). Chains apply the learning rate
last, so the update order equals torch.optim's (see `nebulae.astro.optconf`).
"""

from __future__ import annotations

import functools
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
from .step import update as _update

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
    skips_idx: int
    bad_idx: int | None  # the grad_accum cycle's non-finite flag, where the cycle can be skipped


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
        self.calls = OptSlot(jnp.zeros((), jnp.int32))  # every call (micro-batch)
        self.skips = OptSlot(jnp.zeros((), jnp.int32))  # updates skipped for a non-finite loss or gradient
        if self._guarded() and self.conf.grad_accum > 1:
            self.bad = OptSlot(jnp.zeros((), jnp.int32))
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
            index_of(self.skips),
            index_of(self.bad) if self._guarded() and self.conf.grad_accum > 1 else None,
        )

    def _guarded(self) -> bool:
        """Whether an update can be skipped: a non-finite guard or the loss scaler."""
        return self.conf.mixp or self.conf.nonfinite != "ignore"

    def apply(self, values: list, grads: list, info: OptInfo, loss) -> None:
        """Run one optax update on the flat state `values` (in place), given the objective and its gradients.

        A non-finite loss or gradient (nonfinite != 'ignore'; under mixp: a non-finite gradient) marks the
        grad_accum cycle; its update is skipped inside the step with `jnp.where` (no host sync): weights and the
        optimizer's own state stay, the accumulator is emptied, `skips` counts it, the loss scale backs off.
        """
        conf, k = self.conf, self.conf.grad_accum
        params = [values[i] for i in info.param_idx]
        state = jax.tree.unflatten(self._slot_def, [values[i] for i in info.slot_idx])
        grads = [g.astype(p.dtype) for g, p in zip(grads, params)]
        calls = values[info.calls_idx]
        if conf.mixp:
            scale, good = values[info.scale_idx[0]], values[info.scale_idx[1]]
            grads = [g / scale for g in grads]
        if conf.nonfinite == "raise":
            ok = jnp.isfinite(loss) if conf.mixp else _finite(grads) & jnp.isfinite(loss)
            updates = calls // k - values[info.skips_idx]
            jax.debug.callback(functools.partial(_raise_nonfinite, type(self).__name__), ok, calls + 1, updates + 1)
        guarded = self._guarded()
        if guarded:
            finite = _finite(grads) if conf.mixp else _finite(grads) & jnp.isfinite(loss)
            grads = [jnp.where(finite, g, 0) for g in grads]  # nothing non-finite enters the accumulator
            bad = ~finite if k == 1 else (values[info.bad_idx] > 0) | ~finite
            emit = (calls + 1) % k == 0
            skip = emit & bad

        def step(grads, state, params):
            new_updates, new_state = self._tx.update(grads, state, params)
            return [p + u.astype(p.dtype) for p, u in zip(params, new_updates)], new_state

        new_params, new_state = step(grads, state, params)
        if guarded:
            # a skipped update is selected away element-wise (as optax.apply_if_finite), not branched over with
            # lax.cond: XLA fuses the selection into the update, where a cond's copies of the state cost ~4 % of a
            # ResNet-18 step on CPU
            keep = lambda new, old: jnp.where(skip, old, new)  # noqa: E731
            new_params = [keep(n, o) for n, o in zip(new_params, params)]
            if k == 1:
                new_state = jax.tree.map(keep, new_state, state)
            else:  # MultiSteps: the inner optimizer's state stays, the accumulator empties as usual
                new_state = new_state._replace(
                    inner_opt_state=jax.tree.map(keep, new_state.inner_opt_state, state.inner_opt_state),
                    gradient_step=keep(new_state.gradient_step, state.gradient_step),
                )
                values[info.bad_idx] = jnp.where(emit, 0, bad.astype(jnp.int32))
        if guarded:
            values[info.skips_idx] = values[info.skips_idx] + skip.astype(jnp.int32)
        if conf.mixp:  # the scale changes once per update, as torch's GradScaler.update
            grown = good + 1 >= optconf.SCALER["interval"]
            grow = jnp.where(grown, scale * optconf.SCALER["growth"], scale)
            values[info.scale_idx[0]] = jnp.where(emit, jnp.where(bad, scale * optconf.SCALER["backoff"], grow), scale)
            values[info.scale_idx[1]] = jnp.where(emit, jnp.where(bad | grown, 0, good + 1), good)
        for i, v in zip(info.param_idx, new_params):
            values[i] = v
        for i, v in zip(info.slot_idx, jax.tree.leaves(new_state)):
            values[i] = v
        values[info.calls_idx] = calls + 1

    @property
    def updates(self) -> int:
        return int(self.calls.get_value()) // self.conf.grad_accum - int(self.skips.get_value())

    @property
    def skipped(self) -> int:
        return int(self.skips.get_value())

    @property
    def loss_scale(self) -> float:
        return float(self.scale.get_value()) if self.conf.mixp else 1.0


def _finite(grads: list) -> jax.Array:
    return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(g)) for g in grads]))


def _raise_nonfinite(optimizer: str, ok, call, update) -> None:
    """The host side of nonfinite='raise' (a callback from inside the step)."""
    if not bool(ok):
        _update.raise_from_step(FloatingPointError(optconf.nonfinite_error(optimizer, int(call), int(update))))


def _params_of(hull) -> list[tuple[str, nnx.Param]]:
    return [("/".join(str(p) for p in path), v) for path, v in nnx.iter_graph(hull) if isinstance(v, nnx.Param)]
