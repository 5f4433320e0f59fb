"""What every engine's base craft shares, written once: declaring weights, modes, mixed precision, weight I/O.

An engine's `Craft` is `class Craft(CraftBase, nn.Module)` / `class Craft(CraftBase, nnx.Module)`; it supplies
the `CraftEngine` hooks below (how a weight is stored, which crafts a graph holds, how arrays are copied).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from nebulae.astro import gearbox, statedict

from . import tree

CONV_KERNEL = "conv_kernel"  # a `layout`: a convolution kernel (out, in / groups, *spatial), as torch stores it
COMPILE_OPTIONS = ("mode", "fullgraph", "dynamic", "backend", "options", "disable")  # torch.compile's keywords
_PRECISIONS = {"bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16", "fp16": "float16", "half": "float16"}


def compute_dtype(name: str) -> str:
    """Canonical compute dtype name for `craft.mixp(name)`: 'bfloat16' or 'float16'."""
    key = str(name).lower().replace("torch.", "").replace("jnp.", "")
    if key not in _PRECISIONS:
        raise ValueError(f"mixp takes 'bfloat16' (bf16) or 'float16' (fp16), got {name!r}")
    return _PRECISIONS[key]


class CraftEngine(Protocol):
    """The hooks an engine's Craft supplies to `CraftBase`."""

    def declare(self, kind: str, name: str, array: np.ndarray | None, layout: str | None = None) -> None:
        """Store `array` under `name` as a 'param' (trainable), 'buffer' (exported state) or 'fixed' (constant).

        `layout` names what the neutral array's axes mean (`CONV_KERNEL`: (out, in / groups, *spatial)); an
        engine may hold such an array in another axis order as long as every boundary shows the neutral one.
        """

    def all_crafts(self) -> list:
        """This craft and every craft inside it."""

    def set_training(self, crafts: list, flag: bool) -> None:
        """Make train mode `flag` the persistent default of `crafts` (and of native modules inside them)."""

    def set_mixp(self, dtype: str) -> None:
        """Compute in `dtype` ('bfloat16' or 'float16') from now on."""

    def set_compiled(self, options: dict[str, Any]) -> None:
        """Run later Python-level calls of this craft compiled with `options` (`craft.compile`'s, checked)."""

    def named_weights(self) -> dict[str, Any]:
        """Parameters and buffers (BN statistics) by path, joined with '/'."""

    def weight_shape(self, weight: Any) -> tuple[int, ...]:
        """The shape of one of `named_weights()`'s values."""

    def load_weights(self, chosen: dict[str, Any], own: dict[str, Any]) -> None:
        """Copy each array of `chosen` ({path: array}, already checked) into `own[path]`, keeping its dtype."""


class CraftBase:
    """Base class of every model, layer and step: implement `run(*args, **kwargs)`; calling the craft runs it.

    Called from Python, a craft is a step (torch: run eagerly with the step's update rules; JAX: one cached
    `jax.jit` over its whole state); called inside another craft's `run`, it simply runs. `scope` names
    checkpoint files and summaries. Lists, tuples and dicts of crafts assigned as attributes are registered
    automatically (no ModuleList needed).
    """

    def param(self, name: str, array: np.ndarray | None, layout: str | None = None) -> None:
        """Declare a trainable parameter from an initialised NumPy array (None: no parameter)."""
        self.declare("param", name, array, layout)

    def buffer(self, name: str, array: np.ndarray) -> None:
        """Declare a non-trainable state array that is exported and checkpointed (BN statistics)."""
        self.declare("buffer", name, array)

    def fixed(self, name: str, array: np.ndarray, layout: str | None = None) -> None:
        """Declare a constant array that moves with the craft but is neither trained nor exported."""
        self.declare("fixed", name, array, layout)

    def __repr__(self) -> str:
        return tree.render(self)

    __str__ = __repr__  # nnx's Representable defines its own __str__

    def run(self, *args, **kwargs):
        """The forward computation; subclasses define it."""
        raise TypeError(f"{type(self).__name__} must define run(...)")

    def mixp(self, dtype: str = "bfloat16"):
        """Compute in bf16/fp16 while weights stay float32 (torch: autocast on the craft's device type; JAX:
        floating inputs are cast and layers compute in their input's dtype). For float16 also give the optimizer
        `mixp=True` (dynamic loss scaling)."""
        self.set_mixp(compute_dtype(dtype))
        return self

    def compile(self, **options: Any) -> CraftBase:
        """Compile this step craft; returns the craft, so `train = Train(net).compile()` reads in one line.

        torch: later Python-level calls of this craft (the step you call in the loop) run its forward through
        `torch.compile(**options)` (the whole `run`: model, losses, `optz(loss)`; the backward of that graph is
        compiled with it), while the gradients, optimizer updates, `grad_accum`, loss scaling and the non-finite
        guard stay the eager step's, so results match the eager step. The first call compiles (tens of seconds
        on a CPU); `traces` and `compile_seconds` then count dynamo's compilations. A craft called inside
        another craft's `run` is compiled as part of that step when the step is compiled, not on its own.
        JAX: a no-op returning the craft, since every step is already one `jax.jit` function; the same script
        runs on both engines.

        Args:
            **options: `torch.compile`'s keywords, passed on as given: mode (e.g. "max-autotune-no-cudagraphs"),
                fullgraph, dynamic, backend, options, disable. Checked by name on both engines.
        """
        unknown = sorted(set(options) - set(COMPILE_OPTIONS))
        if unknown:
            raise TypeError(
                f"{type(self).__name__}.compile() got unknown option(s) {unknown}; it takes torch.compile's "
                f"keywords: {', '.join(COMPILE_OPTIONS)}"
            )
        self.set_compiled(dict(options))
        return self

    def gear(self, gr, stats: bool = True):
        """Set train (True) / eval (False) mode, take a Rudder/Prober/Nozzle's mode, or place on an Engine.

        Inside a mode context the setting lasts until the context exits; outside, it persists.
        `stats=False` keeps train mode (batch statistics, active dropout) but leaves the running
        statistics of this craft's BN layers untouched: for a GAN step that only needs the
        generator's output (on JAX it is part of the compiled step's cache key).
        """
        stats = gearbox.as_stats(stats, gr)
        if hasattr(gr, "place"):
            gr.place(self)
            return self
        flag = gearbox.as_training(gr)
        crafts = self.all_crafts()
        ctx = gearbox.active()
        if ctx is None:
            self.set_training(crafts, flag)
            gearbox.set_stats_default(crafts, stats)
        else:
            self.override(ctx, crafts, flag, stats)
        return self

    def override(self, ctx, crafts: list, flag: bool, stats: bool) -> None:
        """Set train mode `flag` (and `stats`) of `crafts` for the mode context `ctx` only."""
        ctx.override((id(m) for m in crafts), flag, stats)

    def is_training(self) -> bool:
        """Whether this craft runs in train mode now (context, in-context gear, then its own flag)."""
        return gearbox.training_of(self, self.training)

    def moved(self) -> None:
        """Called after the engine moved or cast this craft's arrays in place (torch `.to()`, `.cuda()`); a craft
        that keeps a device-side layout of its weights refreshes it here."""

    def weights(self):
        """The main weight of a parametric layer."""
        raise TypeError(f"{type(self).__name__} has no single weight tensor; use vars() or export_weights()")

    def import_weights(self, arrays: dict[str, np.ndarray], strict: bool = True) -> statedict.LoadReport:
        """Load {path: array} into this craft's parameters and buffers; strict raises on any mismatch."""
        own = self.named_weights()
        report = statedict.compare({k: self.weight_shape(v) for k, v in own.items()}, arrays)
        if strict and not report.clean:
            raise KeyError(f"{type(self).__name__}.import_weights: {report}")
        bad = {k for k, *_ in report.mismatched}
        self.load_weights({k: np.asarray(arrays[k]) for k in own if k in arrays and k not in bad}, own)
        return report
