"""Optimizer settings shared by both engines: argument checking, algorithm defaults, the rate formula.

Every optimizer takes `(hull, lr, <algorithm args>, wd=0, lr_decay=None, warmup=0, mixp=False,
grad_limit=-1, grad_accum=1, update_scope=None)`:
- `wd`: weight decay; coupled L2 for Momentum/Nesterov/RMSProp/Adam/Adadelta/Adagrad, decoupled for
  AdamW/Lion/Lamb.
- `lr_decay`: a Schedule (StepLR, PolyLR, CosLR, ExpLR, WavyLR); `warmup`: linear warm-up updates.
- `mixp`: dynamic loss scaling for float16 training (init 2^16, x2 every 2000 finite steps, x0.5
  and the update skipped on overflow), identical on both engines.
- `grad_limit`: clip the global gradient norm to this value (> 0).
- `grad_accum`: apply one update every k calls with the mean of the k gradients (so k micro-batches
  equal one step on the k-times batch).
- `update_scope`: a parameter-path prefix ('encoder' or 'encoder/conv1'); only those are updated.
- `nonfinite`: what an update does when its loss or a gradient is NaN or inf (see `NONFINITE`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nebulae.astro.schedule import Schedule, rate

ALGORITHMS: dict[str, dict[str, float]] = {
    "Momentum": {"mmnt": 0.9},
    "Nesterov": {"mmnt": 0.9},
    "RMSProp": {"mmnt": 0.0, "alpha": 0.99, "eps": 1e-8},
    "Adam": {"mmnt1": 0.9, "mmnt2": 0.999, "eps": 1e-8},
    "AdamW": {"mmnt1": 0.9, "mmnt2": 0.999, "eps": 1e-8},
    "Lion": {"mmnt1": 0.9, "mmnt2": 0.99},
    "Lamb": {"mmnt1": 0.9, "mmnt2": 0.999, "eps": 1e-6},
    "Adadelta": {"rho": 0.9, "eps": 1e-6},
    "Adagrad": {"initial_accumulator_value": 0.0, "eps": 1e-10},
}

NONFINITE = ("skip", "raise", "ignore")
NONFINITE_DOC = """what to do when the loss or a gradient is NaN or inf: 'skip' (default) skips the
            update, leaving weights and optimizer state unchanged, and counts it in `skipped`; with grad_accum the
            whole cycle is skipped when any of its calls is non-finite; the schedule and `updates` do not advance (as
            torch's GradScaler skips optimizer.step); each optimizer decides for its own loss and gradients. Under
            mixp the loss scaler decides from the gradients (skips, backs off, counts in `skipped`) and 'raise'
            raises for a non-finite loss only. 'raise' raises FloatingPointError at the first non-finite call,
            naming it, with weights unchanged (it reads one flag on the host every call: a device sync). 'ignore'
            applies the update anyway (the old behaviour)."""


def nonfinite_error(optimizer: str, call: int, update: int) -> str:
    """The error of nonfinite='raise' (the same text on both engines); `call` and `update` are 1-based."""
    return (
        f"{optimizer}: the loss or a gradient is not finite (NaN or inf) at call {call} (update {update}); the "
        "update was not applied, the weights and optimizer state are as before it. Look for a bad batch (NaN or inf "
        "in the inputs), a loss that can overflow (log(0), division by zero) or a too high learning rate; "
        "nonfinite='skip' skips such updates and counts them in `skipped`"
    )


SCALER = {"init": 2.0**16, "growth": 2.0, "backoff": 0.5, "interval": 2000}


@dataclass(frozen=True, eq=False)
class OptConf:
    """Checked optimizer settings."""

    algorithm: str
    lr: float
    wd: float = 0.0
    lr_decay: Schedule | None = None
    warmup: int = 0
    mixp: bool = False
    grad_limit: float = -1.0
    grad_accum: int = 1
    update_scope: str | None = None
    args: dict[str, float] = field(default_factory=dict)
    nonfinite: str = "skip"

    def rate(self, updates, xp=None):
        """The learning rate of update number `updates` (0-based)."""
        if xp is None:
            return float(rate(self.lr_decay, updates, self.lr, self.warmup))
        return rate(self.lr_decay, updates, self.lr, self.warmup, xp)


def configure(
    algorithm: str, lr, wd, lr_decay, warmup, mixp, grad_limit, grad_accum, update_scope, args, nonfinite="skip"
) -> OptConf:
    """Validate optimizer arguments and fill in the algorithm's defaults."""
    defaults = ALGORITHMS[algorithm]
    unknown = set(args) - set(defaults)
    if unknown:
        raise TypeError(f"{algorithm} got unknown arguments {sorted(unknown)}; it takes {sorted(defaults)}")
    if not lr > 0:
        raise ValueError(f"{algorithm}: lr must be > 0, got {lr}")
    if int(grad_accum) < 1:
        raise ValueError(f"{algorithm}: grad_accum must be >= 1, got {grad_accum}")
    if int(warmup) < 0:
        raise ValueError(f"{algorithm}: warmup must be >= 0, got {warmup}")
    if lr_decay is not None and not isinstance(lr_decay, Schedule):
        raise TypeError(f"{algorithm}: lr_decay must be a schedule such as dock.CosLR(1000), got {lr_decay!r}")
    if nonfinite not in NONFINITE:
        raise ValueError(f"{algorithm}: nonfinite must be one of {list(NONFINITE)}, got {nonfinite!r}")
    return OptConf(
        algorithm,
        float(lr),
        float(wd),
        lr_decay,
        int(warmup),
        bool(mixp),
        float(grad_limit),
        int(grad_accum),
        update_scope.strip("/") if update_scope else None,
        {**defaults, **args},
        nonfinite,
    )
