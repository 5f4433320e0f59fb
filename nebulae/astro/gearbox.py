"""Train/eval and gradient modes shared by both engines: the Rudder/Prober/Nozzle context stack.

A mode-dependent craft (BatchNorm, Dropout, ...) asks `training_of(craft, default)`: an explicit
`gear()` made inside the active context wins, then the context's own mode (Rudder = train,
Prober/Nozzle = eval), then the craft's geared default. A `gear()` made inside a context lasts
until that context exits, on both engines, so a step written once behaves the same on both.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

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
        self.overrides: dict[int, bool] = {}

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

    def override(self, craft_ids: Iterable[int], training: bool) -> None:
        """Record a `gear()` made inside this context for these crafts."""
        for i in craft_ids:
            self.overrides[i] = training

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def active() -> Mode | None:
    """The innermost active mode context, or None."""
    stack = _stack()
    return stack[-1] if stack else None


def training_of(craft: object, default: bool) -> bool:
    """Whether `craft` runs in train mode now (see the module docstring for the order)."""
    stack = _stack()
    if not stack:
        return default
    key = id(craft)
    for ctx in reversed(stack):
        if key in ctx.overrides:
            return ctx.overrides[key]
    return stack[-1].training


def as_training(gr: object) -> bool:
    """Turn a gear argument (bool or mode context) into a train-mode flag."""
    if isinstance(gr, Mode):
        return gr.training
    if isinstance(gr, bool):
        return gr
    raise TypeError(f"gear() takes a bool, a Rudder/Prober/Nozzle or an Engine, got {type(gr).__name__}")
