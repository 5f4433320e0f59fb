"""Rudder, Prober and Nozzle on torch: grad mode plus the shared train/eval context stack."""

from __future__ import annotations

import torch

from nebulae.astro import gearbox

__all__ = ["Rudder", "Prober", "Nozzle"]


class _TorchMode(gearbox.Mode):
    def enter(self) -> None:
        self._grad_prev = torch.is_grad_enabled()
        torch.set_grad_enabled(self.differentiates)
        self._restore: list[tuple[torch.nn.Module, bool]] = []

    def exit(self) -> None:
        for module, flag in reversed(self._restore):
            module.training = flag
        torch.set_grad_enabled(self._grad_prev)

    def remember(self, module: torch.nn.Module) -> None:
        """Keep a native module's train flag so it is restored when the context exits."""
        self._restore.append((module, module.training))


class Rudder(_TorchMode):
    """Train mode; gradients are computed and applied by `optz(loss)`."""

    kind, training, differentiates, applies = "rudder", True, True, True


class Prober(_TorchMode):
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


class Nozzle(_TorchMode):
    """Eval mode; no gradients are computed."""

    kind, training, differentiates, applies = "nozzle", False, False, False
