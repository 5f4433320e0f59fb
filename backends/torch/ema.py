"""The EMA base on torch (EMA is written once in nebulae/astro/crafts/updaters.py): shadow tensors beside the hull."""

from __future__ import annotations

import torch

from . import step as _step
from .craft import Craft

__all__: list[str] = []  # the dock binds the front EMA to `Updater`


class Updater(Craft):
    """The torch side of EMA (nebulae.astro.crafts.updaters.EmaEngine)."""

    def attach(self, hull: Craft) -> None:
        object.__setattr__(self, "_hull", hull)  # not registered: the hull keeps its own paths
        self._keys = [k for k, v in hull.state_dict(keep_vars=True).items() if v.is_floating_point()]
        self._shadow = [t.detach().clone() for t in self._targets()]
        self._swapped = False
        self._steps = 0

    def hull(self) -> Craft:
        return self._hull

    def swapped(self) -> bool:
        return self._swapped

    def _targets(self) -> list[torch.Tensor]:
        own = self._hull.state_dict(keep_vars=True)
        return [own[k] for k in self._keys]

    def fold_later(self) -> None:
        call = _step.current()
        if call is not None:
            call.defer(self)
        else:
            self.fold()

    @torch.no_grad()
    def fold(self) -> None:
        """shadow = decay·shadow + (1-decay)·weight, now."""
        current = [t.detach() for t in self._targets()]
        torch._foreach_mul_(self._shadow, self.decay)
        torch._foreach_add_(self._shadow, current, alpha=1.0 - self.decay)
        self._steps += 1

    @torch.no_grad()
    def swap(self) -> None:
        for i, target in enumerate(self._targets()):
            held = target.data
            target.data = self._shadow[i]
            self._shadow[i] = held
        self._swapped = not self._swapped

    def shadow(self) -> dict:
        return {k.replace(".", "/"): t for k, t in zip(self._keys, self._shadow)}

    def get_extra_state(self) -> dict:
        return {"shadow": [t.detach().cpu() for t in self._shadow], "steps": self._steps, "swapped": self._swapped}

    def set_extra_state(self, state: dict) -> None:
        if state["swapped"] != self._swapped:
            self.swap()
        device = self._shadow[0].device if self._shadow else "cpu"
        self._shadow = [t.to(device) for t in state["shadow"]]
        self._steps = int(state["steps"])
