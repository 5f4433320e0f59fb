"""Rudder, Prober and Nozzle on JAX: the shared train/eval context stack; gradients are the step's job."""

from __future__ import annotations

from nebulae.astro import gearbox

__all__ = ["Rudder", "Prober", "Nozzle"]


class _JaxMode(gearbox.Mode):
    def remember(self, module) -> None:
        """Torch keeps native modules' flags here; JAX crafts need no restoring (kept for symmetry)."""


class Rudder(_JaxMode):
    """Train mode; gradients are computed and applied by `optz(loss)` inside a compiled step."""

    kind, training, differentiates, applies = "rudder", True, True, True


class Prober(_JaxMode):
    """Eval mode; gradients are computed but never applied (saliency, adversarial probing).

    `wrt` names positional arguments of a top-level step call whose gradients are wanted; after
    `with Prober(wrt=(0,)) as pb: out = step(x, y)`, `pb.grads` holds {'inputs': {0: dx},
    'params': {path: dw}} for the scalar the step returned (its first output if a tuple).
    """

    kind, training, differentiates, applies = "prober", False, True, False

    def __init__(self, wrt: tuple[int, ...] | int = ()):
        super().__init__()
        self.wrt = (wrt,) if isinstance(wrt, int) else tuple(wrt)
        self.grads: dict = {}


class Nozzle(_JaxMode):
    """Eval mode; no gradients are computed."""

    kind, training, differentiates, applies = "nozzle", False, False, False
