"""Craft on JAX: the model base class, an `nnx.Module` whose call from Python runs one compiled step."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nebulae.astro import gearbox, precision, statedict
from nebulae.astro.crafts import tree

from . import kernels
from . import step as _step

__all__ = ["Craft"]

WEIGHT_TYPES = (nnx.Param, nnx.BatchStat)


class FixedWeight(nnx.Variable):
    """A non-trainable constant (a fixed convolution kernel, a graph basis); not exported with the weights."""


class Craft(nnx.Module):
    """Base class of every model, layer and step: implement `run(*args, **kwargs)`; calling the craft runs it.

    Called from Python, a craft runs as one cached `jax.jit` step over its whole state (see
    `backends/jax/step.py`); called inside another craft's `run`, it simply runs. `scope` names
    checkpoint files and summaries. Lists, tuples and dicts of crafts assigned as attributes are
    registered automatically.
    """

    _mixp: str | None = None
    ops = kernels.OPS  # the layer kernels front crafts call (backends/jax/kernels)
    dock = None  # the JAX dock namespace, set when it is built
    hangar = None  # the hangar models bound to this Craft, set when they are bound

    def __init__(self, scope: str = "CRAFT"):
        self.scope = scope
        self._training = True
        self._uid = _step.new_uid()

    def param(self, name: str, array: np.ndarray | None) -> None:
        """Declare a trainable parameter from an initialised NumPy array (None: no parameter)."""
        setattr(self, name, None if array is None else nnx.Param(jnp.asarray(array)))

    def buffer(self, name: str, array: np.ndarray) -> None:
        """Declare a non-trainable state array that is exported and checkpointed (BN statistics)."""
        array = np.asarray(array)
        if array.dtype == np.int64:  # JAX runs without 64-bit integers
            array = array.astype(np.int32)
        setattr(self, name, nnx.BatchStat(jnp.asarray(array)))

    def fixed(self, name: str, array: np.ndarray) -> None:
        """Declare a constant array that moves with the craft but is neither trained nor exported."""
        setattr(self, name, FixedWeight(jnp.asarray(array)))

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

    def __repr__(self) -> str:
        return tree.render(self)

    __str__ = __repr__  # nnx's Representable defines its own __str__

    def run(self, *args, **kwargs):
        """The forward computation; subclasses define it."""
        raise TypeError(f"{type(self).__name__} must define run(...)")

    def __call__(self, *args, **kwargs):
        if _step.tracing():
            if self._mixp is not None:
                args, kwargs = _cast_floating((args, kwargs), self._mixp)
            return self.run(*args, **kwargs)
        return _step.compiled_call(self, args, kwargs)

    def mixp(self, dtype: str = "bfloat16") -> Craft:
        """Compute in bf16/fp16 (floating inputs are cast; layers compute in their input's dtype) while
        weights stay float32. For float16 also give the optimizer `mixp=True` (dynamic loss scaling).
        """
        self._mixp = precision.compute_dtype(dtype)
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, nnx.Module) for v in value):
            value = nnx.List(value)
        elif isinstance(value, dict) and value and all(isinstance(v, nnx.Module) for v in value.values()):
            value = nnx.Dict(value)
        if not _step.tracing():
            _step.bump()
        super().__setattr__(name, value)

    def gear(self, gr, stats: bool = True) -> Craft:
        """Set train (True) / eval (False) mode, take a Rudder/Prober/Nozzle's mode, or place on an Engine.

        Inside a mode context the setting lasts until the context exits; outside, it persists.
        `stats=False` keeps train mode (batch statistics, active dropout) but leaves the running
        statistics of this craft's BN layers untouched: for a GAN step that only needs the
        generator's output. It is part of the compiled step's cache key.
        """
        stats = gearbox.as_stats(stats, gr)
        if hasattr(gr, "place"):
            gr.place(self)
            return self
        flag = gearbox.as_training(gr)
        crafts = [m for _, m in nnx.iter_graph(self) if isinstance(m, Craft)]
        ctx = gearbox.active()
        if ctx is None:
            for m in crafts:
                if m._training != flag:
                    m._training = flag
            gearbox.set_stats_default(crafts, stats)
            return self
        ctx.override((id(m) for m in crafts), flag, stats)
        return self

    def is_training(self) -> bool:
        """Whether this craft runs in train mode now (context, in-context gear, then its own flag)."""
        return gearbox.training_of(self, self._training)

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

    def weights(self):
        """The main weight of a parametric layer."""
        raise TypeError(f"{type(self).__name__} has no single weight tensor; use vars() or export_weights()")

    def named_weights(self) -> dict[str, nnx.Variable]:
        """Parameters and buffers (BN statistics) by path, joined with '/'."""
        out = {}
        for path, v in nnx.iter_graph(self):
            if isinstance(v, WEIGHT_TYPES):
                out["/".join(str(p) for p in path)] = v
        return out

    def export_weights(self) -> dict[str, np.ndarray]:
        """Parameters and buffers (BN statistics) as {path: NumPy array}, paths joined with '/'."""
        return {k: np.array(jax.device_get(v.get_value())) for k, v in sorted(self.named_weights().items())}

    def import_weights(self, arrays: dict[str, np.ndarray], strict: bool = True) -> statedict.LoadReport:
        """Load {path: array} into this craft's parameters and buffers; strict raises on any mismatch."""
        own = self.named_weights()
        report = statedict.compare({k: tuple(v.get_value().shape) for k, v in own.items()}, arrays)
        if strict and not report.clean:
            raise KeyError(f"{type(self).__name__}.import_weights: {report}")
        bad = {k for k, *_ in report.mismatched}
        for key, target in own.items():
            if key in arrays and key not in bad:
                current = target.get_value()
                target.set_value(jnp.asarray(np.asarray(arrays[key]), dtype=current.dtype))
        return report


def _members(child):
    return child.values() if isinstance(child, dict) else child


def _cast_floating(tree, dtype: str):
    def cast(x):
        if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jnp.floating):
            return x.astype(dtype)
        return x

    return jax.tree.map(cast, tree)
