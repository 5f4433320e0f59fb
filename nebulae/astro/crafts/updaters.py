"""Updaters: the optimizers (Momentum, Nesterov, RMSProp, Adam, AdamW, Lion, Lamb, Adadelta, Adagrad) and EMA.

Each is written once here: signature, `Args:` docstring, argument checks and the rules of a call
(`optz(loss)` under a Prober applies nothing, under a Nozzle it is refused). An engine binds them
to its own updater base (`backends/<engine>/optim.py: Updater`, `backends/<engine>/ema.py: Updater`),
which implements the `Engine` protocols below: where gradients come from and how the state changes
(torch: eager backward into a per-optimizer accumulator, torch.optim; JAX: the compiled step
differentiates the recorded objective and runs optax on its flat state).
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol

from nebulae.astro import gearbox, optconf

__all__ = [
    "Momentum",
    "Nesterov",
    "RMSProp",
    "Adam",
    "AdamW",
    "Lion",
    "Lamb",
    "Adadelta",
    "Adagrad",
    "EMA",
]


class OptimizerEngine(Protocol):
    """What an engine's optimizer base supplies to the front `Optimizer`."""

    def attach(self, hull: Any) -> None:
        """Find the parameters of `hull` within `self.conf.update_scope` (ValueError naming the scope when there
        are none) and build the optimizer state."""

    def check_call(self) -> None:
        """Raise RuntimeError where `optz(loss)` cannot be called now (JAX: outside a step's run)."""

    def record(self, loss: Any) -> None:
        """Take `loss` as this optimizer's objective: inside a step, differentiated and applied when `run`
        returns; outside one (torch), now."""

    @property
    def updates(self) -> int:
        """How many updates were applied."""

    @property
    def skipped(self) -> int:
        """How many updates were skipped for a non-finite loss or gradient (mixp overflows included)."""

    @property
    def loss_scale(self) -> float:
        """The current dynamic loss scale (1.0 without mixp)."""


class EmaEngine(Protocol):
    """What an engine's EMA base supplies to the front `EMA`."""

    def attach(self, hull: Any) -> None:
        """Copy the floating-point weights (parameters and buffers) of `hull` as the shadow weights."""

    def hull(self) -> Any:
        """The craft whose weights this EMA follows."""

    def swapped(self) -> bool:
        """Whether the shadow weights are in the hull now."""

    def swap(self) -> None:
        """Exchange the hull's weights and the shadow weights exactly (no arithmetic)."""

    def fold_later(self) -> None:
        """Fold the hull's weights into the shadow: inside a step after its updates, outside one now."""

    def shadow(self) -> dict:
        """The shadow weights as {path: array} (the trained weights while on())."""


_COMMON_ARGS = (
    """
        wd: weight decay (coupled L2 for Momentum, Nesterov, RMSProp, Adam, Adadelta and Adagrad; decoupled for
            AdamW, Lion and Lamb).
        lr_decay: a schedule of the rate (dock.StepLR, PolyLR, CosLR, ExpLR, WavyLR), or None for a constant rate.
        warmup: the number of updates of a linear warm-up before the schedule.
        mixp: dynamic loss scaling for float16 training (init 2^16, x2 every 2000 finite steps, x0.5 and the update
            skipped on overflow), the same on both engines.
        grad_limit: clip the global gradient norm to this value (> 0; -1: no clipping).
        grad_accum: apply one update every `grad_accum` calls with the mean of their gradients.
        update_scope: a parameter-path prefix ('encoder' or 'encoder/conv1'): only those parameters are updated.
        scope: the name of this craft in checkpoints and summaries.
        nonfinite: """
    + optconf.NONFINITE_DOC
    + """
"""
)

_LEADING_ARGS = """
    Args:
        hull: the craft whose parameters this optimizer updates.
        lr: the learning rate (> 0)."""


class Optimizer:
    """Base of the optimizer crafts: `optz(loss)` inside a step's `run` names the objective; when `run` returns, the
    loss is differentiated with respect to this optimizer's parameters only and applied (every `grad_accum` calls)."""

    algorithm = ""

    def __init__(
        self,
        hull: Any,
        lr: float,
        wd: float = 0.0,
        lr_decay: Any = None,
        warmup: int = 0,
        mixp: bool = False,
        grad_limit: float = -1,
        grad_accum: int = 1,
        update_scope: str | None = None,
        scope: str = "OPTZ",
        nonfinite: str = "skip",
        **algorithm_args: float,
    ):
        super().__init__(scope)
        self.conf = optconf.configure(
            self.algorithm,
            lr,
            wd,
            lr_decay,
            warmup,
            mixp,
            grad_limit,
            grad_accum,
            update_scope,
            algorithm_args,
            nonfinite,
        )
        self.attach(hull)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.algorithm and "__signature__" not in cls.__dict__ and cls.__module__ == __name__:
            cls.__signature__ = _signature(cls.algorithm)
            cls.__doc__ = (cls.__doc__ or "").replace("    Args:", _LEADING_ARGS.strip("\n"), 1) + _COMMON_ARGS

    def __call__(self, loss: Any) -> None:
        self.check_call()
        if gearbox.probing():
            return  # a Prober computes gradients and applies nothing
        ctx = gearbox.active()
        if ctx is not None and not ctx.applies:
            raise RuntimeError(
                f"{type(self).__name__}(loss) was called under {type(ctx).__name__}: only a Rudder "
                "(or no context) applies gradients"
            )
        self.record(loss)

    def run(self, loss: Any) -> None:
        return self(loss)

    @property
    def lr(self) -> float:
        """The rate the next update will use."""
        return self.conf.rate(self.updates)


def check_chosen(optimizer: Any, hull: Any, chosen: list) -> None:
    """ValueError unless `optimizer` found parameters of `hull` within its update_scope (`chosen`)."""
    if not chosen:
        raise ValueError(
            f"{type(optimizer).__name__}: no parameters of {type(hull).__name__} lie in update_scope "
            f"{optimizer.conf.update_scope!r}"
        )


def _signature(algorithm: str) -> inspect.Signature:
    """Optimizer's signature with the algorithm's own arguments, keyword-only, in place of `**algorithm_args`."""
    base = list(inspect.signature(Optimizer.__init__).parameters.values())[1:-1]
    own = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation="float")
        for name, default in optconf.ALGORITHMS[algorithm].items()
    ]
    return inspect.Signature([*base, *own])


class Momentum(Optimizer):
    """SGD with momentum, as torch.optim.SGD(momentum=mmnt).

    Args:
        mmnt: the momentum (keyword-only, default 0.9)."""

    algorithm = "Momentum"


class Nesterov(Optimizer):
    """SGD with Nesterov momentum, as torch.optim.SGD(momentum=mmnt, nesterov=True).

    Args:
        mmnt: the momentum (keyword-only, default 0.9)."""

    algorithm = "Nesterov"


class RMSProp(Optimizer):
    """RMSProp, as torch.optim.RMSprop (eps outside the square root).

    Args:
        mmnt: the momentum (keyword-only, default 0).
        alpha: the smoothing constant of the mean square (keyword-only, default 0.99).
        eps: added to the root for stability (keyword-only, default 1e-8)."""

    algorithm = "RMSProp"


class Adam(Optimizer):
    """Adam, as torch.optim.Adam.

    Args:
        mmnt1: the decay of the first moment (beta1; keyword-only, default 0.9).
        mmnt2: the decay of the second moment (beta2; keyword-only, default 0.999).
        eps: added to the root for stability (keyword-only, default 1e-8)."""

    algorithm = "Adam"


class AdamW(Optimizer):
    """Adam with decoupled weight decay, as torch.optim.AdamW (but `wd` defaults to 0 here, as everywhere).

    Args:
        mmnt1: the decay of the first moment (beta1; keyword-only, default 0.9).
        mmnt2: the decay of the second moment (beta2; keyword-only, default 0.999).
        eps: added to the root for stability (keyword-only, default 1e-8)."""

    algorithm = "AdamW"


class Lion(Optimizer):
    """Lion (Chen et al. 2023), as optax.lion: p -= lr·(sign(b1·m + (1-b1)·g) + wd·p); m = b2·m + (1-b2)·g.

    Args:
        mmnt1: the interpolation of the update direction (b1; keyword-only, default 0.9).
        mmnt2: the decay of the momentum (b2; keyword-only, default 0.99)."""

    algorithm = "Lion"


class Lamb(Optimizer):
    """LAMB (You et al. 2020), as optax.lamb: bias-corrected Adam, decoupled decay, layer-wise trust ratio.

    Args:
        mmnt1: the decay of the first moment (beta1; keyword-only, default 0.9).
        mmnt2: the decay of the second moment (beta2; keyword-only, default 0.999).
        eps: added to the root for stability (keyword-only, default 1e-6)."""

    algorithm = "Lamb"


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012), as torch.optim.Adadelta and optax.adadelta (torch's usual lr is 1.0).

    Args:
        rho: the decay of both running averages (keyword-only, default 0.9).
        eps: added inside both roots (keyword-only, default 1e-6)."""

    algorithm = "Adadelta"


class Adagrad(Optimizer):
    """Adagrad, as torch.optim.Adagrad: p -= lr·g / (sqrt(sum of g²) + eps) (torch's usual lr is 0.01).

    optax.adagrad starts its sum at 0.1 and puts eps inside the root; this follows torch on both engines (start
    `initial_accumulator_value`, eps outside the root); `lr_decay` is a schedule, as for every optimizer here.

    Args:
        initial_accumulator_value: the starting value of the sum of squared gradients (keyword-only, default 0).
        eps: added to the root for stability (keyword-only, default 1e-10)."""

    algorithm = "Adagrad"


class EMA:
    """Exponential moving average of a hull's float weights: shadow = decay·shadow + (1-decay)·weight.

    `update()` after `optz(loss)` folds the new weights in (inside a step, after the step's optimizer updates, on
    both engines); `on()` swaps the shadow weights into the hull (for evaluation) and `off()` swaps them back,
    exactly (the arrays are exchanged, no arithmetic). Integer buffers are left alone. Calling the EMA runs the hull.

    Args:
        hull: the craft whose floating-point parameters and buffers are averaged.
        decay: the weight of the old shadow, in [0, 1).
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, hull: Any, decay: float = 0.999, scope: str = "EMA"):
        super().__init__(scope)
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.attach(hull)

    def update(self) -> None:
        """Fold the hull's weights into the shadow; inside a step, after the step's updates."""
        if self.swapped():
            raise RuntimeError("EMA.update() while the shadow is swapped in (after on()); call off() first")
        if gearbox.probing():
            return  # a Prober applies nothing
        self.fold_later()

    def on(self) -> None:
        """Put the shadow weights into the hull (no-op if already on)."""
        if not self.swapped():
            self.swap()

    def off(self) -> None:
        """Put the trained weights back into the hull (no-op if already off)."""
        if self.swapped():
            self.swap()

    def run(self, *args: Any, **kwargs: Any) -> Any:
        return self.hull()(*args, **kwargs)
