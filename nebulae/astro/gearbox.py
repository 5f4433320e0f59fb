"""Train/eval and gradient modes shared by both engines: the Rudder/Prober/Nozzle context stack.

A mode-dependent craft (BatchNorm, Dropout, ...) asks `training_of(craft, default)`: an explicit
`gear()` made inside the active context wins, then the context's own mode (Rudder = train,
Prober/Nozzle = eval), then the craft's geared default. A `gear()` made inside a context lasts
until that context exits, on both engines, so a step written once behaves the same on both.

`gear(..., stats=False)` keeps train mode (batch statistics, active dropout) but leaves running
statistics alone: BatchNorm asks `updates_stats(craft, default)`, which follows the same order
(in-context gear, then the context's mode, then the craft's geared default) and is False in eval
mode. The setting is carried as a `Gear` (training, stats) in `Mode.overrides`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from typing import NamedTuple

STATS_ATTR = "_gear_stats"  # a craft's geared default for `stats` (set by gear(..., stats=False) outside contexts)


class Gear(NamedTuple):
    """A craft's setting: train mode, and whether train-mode calls update its running statistics."""

    training: bool
    stats: bool = True


_local = threading.local()


def _stack() -> list:
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


class Mode:
    """Base of Rudder, Prober and Nozzle: a context that sets train/eval mode and gradient handling."""

    kind = "mode"
    training = False  # train-mode layers (BN batch statistics, active dropout)?
    differentiates = False  # are gradients computed?
    applies = False  # are gradients applied by optimizers?

    def __init__(self):
        self.overrides: dict[int, Gear | bool] = {}  # craft id -> Gear (a bool b reads as Gear(b, b))

    def __enter__(self):
        _stack().append(self)
        self.enter()
        return self

    def __exit__(self, *exc):
        try:
            self.exit()
        finally:
            stack = _stack()
            if stack and stack[-1] is self:
                stack.pop()
            elif self in stack:
                stack.remove(self)
            self.overrides = {}
        return False

    def enter(self) -> None:
        """Engine hook run on entry (grad mode on torch)."""

    def exit(self) -> None:
        """Engine hook run on exit."""

    def __bool__(self) -> bool:
        return self.training

    def override(self, craft_ids: Iterable[int], training: bool, stats: bool = True) -> None:
        """Record a `gear()` made inside this context for these crafts."""
        gear = Gear(bool(training), bool(stats))
        for i in craft_ids:
            self.overrides[i] = gear

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Rudder(Mode):
    """Train mode; gradients are computed and applied by `optz(loss)` (inside a step: when its run returns)."""

    kind, training, differentiates, applies = "rudder", True, True, True


class Prober(Mode):
    """Eval mode; gradients are computed but never applied (saliency, adversarial probing).

    `wrt` names positional arguments of a top-level step call whose gradients are wanted; after
    `with Prober(wrt=(0,)) as pb: out = step(x, y)`, `pb.grads` holds {'inputs': {0: dx},
    'params': {path: dw}} for the scalar the step returned (its first output if a tuple).

    Args:
        wrt: the positions of the step call's array arguments to differentiate (an int or a tuple).
    """

    kind, training, differentiates, applies = "prober", False, True, False

    def __init__(self, wrt: tuple[int, ...] | int = ()):
        super().__init__()
        self.wrt = (wrt,) if isinstance(wrt, int) else tuple(wrt)
        self.grads: dict = {}

    def check_wrt(self, args: tuple, is_array) -> None:
        """Refuse a `wrt` position that is not an array argument of the step call."""
        for k in self.wrt:
            if k >= len(args) or not is_array(args[k]):
                got = f"a {type(args[k]).__name__}" if k < len(args) else f"only {len(args)} positional arguments"
                raise TypeError(f"Prober(wrt={self.wrt}): positional argument {k} is not an array ({got})")

    @staticmethod
    def check_scalar(shape: tuple | None) -> None:
        """Refuse a step whose first output is not one number (`shape` None: not an array)."""
        if shape is None or math.prod(shape) != 1:
            raise ValueError(
                f"Prober needs the step to return a scalar (its first output, if a tuple), got shape {shape}; "
                "return the loss first, e.g. `return loss, logits`"
            )


class Nozzle(Mode):
    """Eval mode; no gradients are computed."""

    kind, training, differentiates, applies = "nozzle", False, False, False


MODES = {"rudder": Rudder, "prober": Prober, "nozzle": Nozzle}


def active() -> Mode | None:
    """The innermost active mode context, or None."""
    stack = _stack()
    return stack[-1] if stack else None


def probing() -> bool:
    """Whether a Prober is active anywhere on the stack (optimizers and EMAs then apply nothing)."""
    return any(ctx.kind == "prober" for ctx in _stack())


def gear_of(craft: object, default: bool) -> Gear:
    """`craft`'s setting now, stats normalised to False in eval mode (hashable: JAX's step cache key uses it).

    `default` is the craft's geared train flag; its geared stats default is its STATS_ATTR (True if unset).
    """
    stack = _stack()
    if not stack:
        training, stats = bool(default), getattr(craft, STATS_ATTR, True)
    else:
        key = id(craft)
        for ctx in reversed(stack):
            if key in ctx.overrides:
                training, stats = _as_gear(ctx.overrides[key])
                break
        else:
            training = stats = stack[-1].training
    return Gear(training, training and stats)


def _as_gear(value: Gear | bool) -> Gear:
    return value if isinstance(value, Gear) else Gear(bool(value), bool(value))


def training_of(craft: object, default: bool) -> bool:
    """Whether `craft` runs in train mode now (see the module docstring for the order)."""
    stack = _stack()
    if not stack:
        return default
    key = id(craft)
    for ctx in reversed(stack):
        if key in ctx.overrides:
            value = ctx.overrides[key]
            return value.training if isinstance(value, Gear) else value
    return stack[-1].training


def updates_stats(craft: object, default: bool) -> bool:
    """Whether `craft` updates its running statistics now: train mode, and not geared with stats=False."""
    return gear_of(craft, default).stats


def set_stats_default(crafts: Iterable[object], stats: bool) -> None:
    """Record `stats` as these crafts' geared default (gear() outside a context); unset means True."""
    for craft in crafts:
        if getattr(craft, STATS_ATTR, True) != stats:
            setattr(craft, STATS_ATTR, stats)


def as_stats(stats: object, gr: object) -> bool:
    """Check gear()'s `stats` argument: a bool, and only with a train/eval setting (not an Engine)."""
    if not isinstance(stats, bool):
        raise TypeError(f"gear(..., stats=) takes True or False, got {type(stats).__name__}")
    if not stats and hasattr(gr, "place"):
        raise TypeError(
            "gear(engine, stats=False): stats applies to train/eval gearing; place the craft with gear(engine), "
            "then call gear(True or a Rudder, stats=False)"
        )
    return stats


def as_training(gr: object) -> bool:
    """Turn a gear argument (bool or mode context) into a train-mode flag."""
    if isinstance(gr, Mode):
        return gr.training
    if isinstance(gr, bool):
        return gr
    raise TypeError(f"gear() takes a bool, a Rudder/Prober/Nozzle or an Engine, got {type(gr).__name__}")
