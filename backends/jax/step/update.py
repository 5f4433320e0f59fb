"""The update part of a compiled step: the `Updater` contract, and the train and probe steps.

An updater (an optimizer, an EMA) tells the Plan where its Variables sit in the flat state
(`plan_info`); the train step then hands it the flat state to change functionally: `apply` with
the gradients of the objective it recorded (optimizers), `after_update` once every optimizer has
applied (what an EMA deferred with `Recorder.defer`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

from nebulae.astro import gearbox

from ..layout import axes_of, to_neutral
from .trace import Recorder


@runtime_checkable
class Updater(Protocol):
    """A craft that changes weights inside a compiled step: found in a step's graph by this protocol."""

    def plan_info(self, index_of: Callable[[Any], int]) -> Any:
        """Where its Variables sit in the step's flat state (`index_of(variable)` gives a position); the step
        passes the result back to `apply` / `after_update`."""


class GradientUpdater(Updater, Protocol):
    """An updater that records an objective (`Recorder.objective`): the optimizers."""

    def apply(self, values: list, grads: list, info: Any, loss: Any) -> None:
        """Update the flat state `values` in place, given its objective `loss` and the gradients of it w.r.t. its
        parameters."""


class FollowingUpdater(Updater, Protocol):
    """An updater that runs after the optimizers (`Recorder.defer`): the EMA."""

    def after_update(self, values: list, info: Any) -> None:
        """Update the flat state `values` in place, from the weights the optimizers just wrote."""


_raised: list[BaseException] = []  # an error an updater raised from a host callback inside the step


def raise_from_step(error: BaseException) -> None:
    """Raise `error` from a host callback inside a step (JAX wraps it; `take_raised` gives the original back)."""
    _raised[:] = [error]
    raise error


def take_raised() -> BaseException | None:
    """The error last raised by `raise_from_step`, once (None if none)."""
    return _raised.pop() if _raised else None


def train_step(plan, forward, values, arrays):
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
        updater, info = plan.updaters[uid]
        if losses[n].dtype == jnp.float16:
            raise TypeError("the loss is float16; compute losses in float32 (mixp keeps losses in float32)")
        cot = tuple(jnp.ones_like(l) if k == n else jnp.zeros_like(l) for k, l in enumerate(losses))
        (g_all,) = vjp_fn(cot)
        updater.apply(new_values, [g_all[position[i]] for i in info.param_idx], info, losses[n])
    for uid in rec.deferred:
        updater, info = plan.updaters[uid]
        updater.after_update(new_values, info)
    return out, new_values


def probe_step(plan, forward, values, arrays, wrt):
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
        gearbox.Prober.check_scalar(tuple(target.shape) if isinstance(target, jax.Array) else None)
        return jnp.reshape(target, ()), (out, new_values)

    inputs = [arrays[k] for k in wrt]
    (gp, gi), (out, new_values) = jax.grad(target_fn, argnums=(0, 1), has_aux=True)(
        [values[i] for i in param_idx], inputs
    )
    grads = {
        "inputs": dict(zip(wrt, gi)),
        "params": {
            "/".join(str(p) for p in plan.paths[i]): to_neutral(g, axes_of(plan.variables[i]))
            for i, g in zip(param_idx, gp)
        },
    }
    return out, new_values, grads
