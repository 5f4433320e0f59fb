"""Rudder, Prober and Nozzle on torch: the front's modes plus torch's grad mode and native modules' flags."""

from __future__ import annotations

import torch

from nebulae.astro import gearbox

__all__ = ["Rudder", "Prober", "Nozzle"]


class GradMode:
    """The torch side of a mode: grad mode on entry, native modules' train flags restored on exit."""

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


class Rudder(GradMode, gearbox.Rudder):
    __doc__ = gearbox.Rudder.__doc__


class Prober(GradMode, gearbox.Prober):
    __doc__ = gearbox.Prober.__doc__


class Nozzle(GradMode, gearbox.Nozzle):
    __doc__ = gearbox.Nozzle.__doc__
