"""Craft on JAX: the model base class, an `nnx.Module` whose call from Python runs one compiled step."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nebulae.astro.crafts.craft import CraftBase

from . import kernels
from . import layout as _layout
from . import step as _step

__all__ = ["Craft"]

WEIGHT_TYPES = (nnx.Param, nnx.BatchStat)


class FixedWeight(nnx.Variable):
    """A non-trainable constant (a fixed convolution kernel, a graph basis); not exported with the weights."""


class Craft(CraftBase, nnx.Module):
    __doc__ = CraftBase.__doc__

    _mixp: str | None = None
    ops = kernels.OPS  # the layer kernels front crafts call (backends/jax/kernels)
    dock = None  # the JAX dock namespace, set when it is built
    hangar = None  # the hangar models bound to this Craft, set when they are bound

    def __init__(self, scope: str = "CRAFT"):
        self.scope = scope
        self._training = True
        self._uid = _step.new_uid()

    def declare(self, kind: str, name: str, array: np.ndarray | None, layout: str | None = None) -> None:
        if array is None:
            setattr(self, name, None)
            return
        array = np.asarray(array)
        if kind == "buffer" and array.dtype == np.int64:  # JAX runs without 64-bit integers
            array = array.astype(np.int32)
        axes = _layout.stored_axes_for(layout, array.ndim)
        if axes is None:
            setattr(self, name, _VARIABLES[kind](jnp.asarray(array)))
        else:
            setattr(self, name, _VARIABLES[kind](jnp.asarray(_layout.to_stored(array, axes)), **{_layout.AXES: axes}))

    def sub_crafts(self) -> list[tuple[str, Any]]:
        """(name, sub-craft) pairs in assignment order; lists and dicts of crafts as Python lists and dicts."""
        out = []
        for name, child in vars(self).items():
            if isinstance(child, nnx.List):
                child = list(child)
            elif isinstance(child, nnx.Dict):
                child = dict(child)
            if isinstance(child, nnx.Module) or (
                isinstance(child, (list, dict)) and child and all(isinstance(c, nnx.Module) for c in _members(child))
            ):
                out.append((name, child))
        return out

    def __call__(self, *args, **kwargs):
        if _step.tracing():
            if self._mixp is not None:
                args, kwargs = _cast_floating((args, kwargs), self._mixp)
            return self.run(*args, **kwargs)
        return _step.compiled_call(self, args, kwargs)

    def set_mixp(self, dtype: str) -> None:
        self._mixp = dtype

    def set_compiled(self, options: dict) -> None:
        """Nothing to do: every Python-level call of a craft already runs one cached `jax.jit` step."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, nnx.Module) for v in value):
            value = nnx.List(value)
        elif isinstance(value, dict) and value and all(isinstance(v, nnx.Module) for v in value.values()):
            value = nnx.Dict(value)
        if not _step.tracing():
            _step.bump()
        super().__setattr__(name, value)

    def all_crafts(self) -> list:
        return [m for _, m in nnx.iter_graph(self) if isinstance(m, Craft)]

    def set_training(self, crafts: list, flag: bool) -> None:
        for m in crafts:
            if m._training != flag:
                m._training = flag

    @property
    def training(self) -> bool:
        """The craft's geared default mode (as torch's `Module.training`)."""
        return self._training

    @property
    def traces(self) -> int:
        """How many times this craft's compiled step was traced (one per mode and input signature)."""
        return _step.trace_count(self)

    @property
    def compile_seconds(self) -> float:
        """Seconds spent tracing and compiling this craft's step."""
        return _step.compile_seconds(self)

    def vars(self) -> list:
        """All parameters (nnx.Param Variables), as a list."""
        return [v for _, v in nnx.iter_graph(self) if isinstance(v, nnx.Param)]

    def named_weights(self) -> dict[str, nnx.Variable]:
        """Parameters and buffers (BN statistics) by path, joined with '/'."""
        out = {}
        for path, v in nnx.iter_graph(self):
            if isinstance(v, WEIGHT_TYPES):
                out["/".join(str(p) for p in path)] = v
        return out

    def export_weights(self) -> dict[str, np.ndarray]:
        """Parameters and buffers (BN statistics) as {path: NumPy array}, paths joined with '/', in the neutral
        (torch) layout whatever the stored one (backends/jax/layout.py)."""
        named = sorted(self.named_weights().items())
        host = jax.device_get([v.get_value() for _, v in named])
        return {k: np.array(_layout.to_neutral(a, _layout.axes_of(v))) for (k, v), a in zip(named, host)}

    def weight_shape(self, weight: nnx.Variable) -> tuple[int, ...]:
        return _layout.neutral_shape(weight.get_value().shape, _layout.axes_of(weight))

    def load_weights(self, chosen: dict[str, np.ndarray], own: dict[str, nnx.Variable]) -> None:
        for key, array in chosen.items():
            stored = _layout.to_stored(np.asarray(array), _layout.axes_of(own[key]))
            own[key].set_value(jnp.asarray(stored, dtype=own[key].get_value().dtype))


_VARIABLES = {"param": nnx.Param, "buffer": nnx.BatchStat, "fixed": FixedWeight}


def _members(child):
    return child.values() if isinstance(child, dict) else child


def _cast_floating(tree, dtype: str):
    def cast(x):
        if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jnp.floating):
            return x.astype(dtype)
        return x

    return jax.tree.map(cast, tree)
