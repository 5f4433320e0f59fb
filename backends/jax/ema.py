"""The EMA base on JAX (EMA is written once in nebulae/astro/crafts/updaters.py): shadow weights as Variables
in the step's state, folded after the optimizer updates."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import nnx

from . import step as _step
from .craft import Craft
from .layout import axes_of, to_neutral

__all__: list[str] = []  # the dock binds the front EMA to `Updater`


class EmaShadow(nnx.Variable):
    """A shadow weight of an EMA."""


@dataclass(frozen=True)
class EmaInfo:
    """Positions of the hull's weights and of their shadows in a step's flat state."""

    target_idx: tuple[int, ...]
    shadow_idx: tuple[int, ...]
    steps_idx: int


_swapped: set[int] = set()  # uids of EMAs whose shadow is swapped in; kept out of the graph so on()/off()
# never changes the compiled step's structure


class Updater(Craft):
    """The JAX side of EMA (nebulae.astro.crafts.updaters.EmaEngine and the step's `Updater`)."""

    def attach(self, hull: Craft) -> None:
        self._hull = weakref.ref(hull)
        named = [(k, v) for k, v in hull.named_weights().items() if jnp.issubdtype(v.get_value().dtype, jnp.floating)]
        self._keys = tuple(k for k, _ in named)
        self._shadows = nnx.List([EmaShadow(jnp.array(v.get_value(), copy=True)) for _, v in named])
        self.steps = EmaShadow(jnp.zeros((), jnp.int32))

    def hull(self) -> Craft:
        return self._hull()

    def swapped(self) -> bool:
        return self._uid in _swapped

    def _targets(self) -> list[nnx.Variable]:
        hull = self._hull()
        own = hull.named_weights()
        return [own[k] for k in self._keys]

    def fold_later(self) -> None:
        rec = _step.recorder()
        if rec is not None:
            rec.defer(self._uid)
            return
        targets = self._targets()
        values = [v.get_raw_value() for v in targets] + [s.get_raw_value() for s in self._shadows]
        n = len(targets)
        new = _fold(values[:n], values[n:], self.decay)
        for s, v in zip(self._shadows, new):
            s.set_raw_value(v)
        self.steps.set_raw_value(self.steps.get_raw_value() + 1)

    def plan_info(self, index_of) -> EmaInfo:
        """Where the hull's weights and the shadows sit in a step's flat state."""
        return EmaInfo(
            tuple(index_of(v) for v in self._targets()), tuple(index_of(v) for v in self._shadows), index_of(self.steps)
        )

    def after_update(self, values: list, info: EmaInfo) -> None:
        """Fold the updated weights into the shadows on the flat state (in place)."""
        new = _fold([values[i] for i in info.target_idx], [values[i] for i in info.shadow_idx], self.decay)
        for i, v in zip(info.shadow_idx, new):
            values[i] = v
        values[info.steps_idx] = values[info.steps_idx] + 1

    def swap(self) -> None:
        if _step.tracing():
            raise RuntimeError("EMA.on()/off() swap weights between steps; call them outside the step's run")
        for target, shadow in zip(self._targets(), self._shadows):
            held = target.get_raw_value()
            target.set_raw_value(shadow.get_raw_value())
            shadow.set_raw_value(held)
        _swapped.symmetric_difference_update({self._uid})

    def shadow(self) -> dict:
        targets = self._targets()
        return {k: to_neutral(s.get_value(), axes_of(t)) for k, s, t in zip(self._keys, self._shadows, targets)}


@jax.jit
def _fold_jit(targets, shadows, decay):
    return [decay * s + (1.0 - decay) * t.astype(s.dtype) for t, s in zip(targets, shadows)]


def _fold(targets, shadows, decay):
    if _step.tracing() or isinstance(next(iter(targets), None), jax.core.Tracer):
        return [decay * s + (1.0 - decay) * t.astype(s.dtype) for t, s in zip(targets, shadows)]
    return _fold_jit(targets, shadows, jnp.float32(decay))
