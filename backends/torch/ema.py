"""EMA on torch: shadow weights that follow the hull's floating-point parameters and buffers."""

from __future__ import annotations

import torch

from nebulae.astro import gearbox

from . import step as _step
from .craft import Craft

__all__ = ["EMA"]


class EMA(Craft):
    """Exponential moving average of a hull's float weights: shadow = decay·shadow + (1-decay)·weight.

    `update()` after `optz(loss)` folds the new weights in; `on()` swaps the shadow weights into
    the hull (for evaluation) and `off()` swaps them back, exactly (the tensors are exchanged, no
    arithmetic). Integer buffers are left alone. Calling the EMA runs the hull.
    """

    def __init__(self, hull: Craft, decay: float = 0.999, scope: str = "EMA"):
        super().__init__(scope)
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        object.__setattr__(self, "_hull", hull)  # not registered: the hull keeps its own paths
        self.decay = float(decay)
        self._keys = [k for k, v in hull.state_dict(keep_vars=True).items() if v.is_floating_point()]
        self._shadow = [t.detach().clone() for t in self._targets()]
        self._swapped = False
        self._steps = 0

    def _targets(self) -> list[torch.Tensor]:
        own = self._hull.state_dict(keep_vars=True)
        return [own[k] for k in self._keys]

    def update(self) -> None:
        """Fold the hull's weights into the shadow; inside a step, after the step's updates (as on JAX)."""
        if self._swapped:
            raise RuntimeError("EMA.update() while the shadow is swapped in (after on()); call off() first")
        if gearbox.probing():
            return  # a Prober applies nothing
        call = _step.current()
        if call is not None:
            call.defer(self)
            return
        self.fold()

    @torch.no_grad()
    def fold(self) -> None:
        """shadow = decay·shadow + (1-decay)·weight, now."""
        current = [t.detach() for t in self._targets()]
        torch._foreach_mul_(self._shadow, self.decay)
        torch._foreach_add_(self._shadow, current, alpha=1.0 - self.decay)
        self._steps += 1

    @torch.no_grad()
    def _swap(self) -> None:
        for i, target in enumerate(self._targets()):
            held = target.data
            target.data = self._shadow[i]
            self._shadow[i] = held
        self._swapped = not self._swapped

    def on(self) -> None:
        """Put the shadow weights into the hull (no-op if already on)."""
        if not self._swapped:
            self._swap()

    def off(self) -> None:
        """Put the trained weights back into the hull (no-op if already off)."""
        if self._swapped:
            self._swap()

    def shadow(self) -> dict:
        """The shadow weights as {path: tensor} (the trained weights while on())."""
        return {k.replace(".", "/"): t for k, t in zip(self._keys, self._shadow)}

    def run(self, *args, **kwargs):
        return self._hull(*args, **kwargs)

    def get_extra_state(self) -> dict:
        return {"shadow": [t.detach().cpu() for t in self._shadow], "steps": self._steps, "swapped": self._swapped}

    def set_extra_state(self, state: dict) -> None:
        if state["swapped"] != self._swapped:
            self._swap()
        device = self._shadow[0].device if self._shadow else "cpu"
        self._shadow = [t.to(device) for t in state["shadow"]]
        self._steps = int(state["steps"])
