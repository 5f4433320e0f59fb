"""Pad and Identity on JAX; the padding-mode constants CONSTANT, REFLECT and BORDER (= replicate)."""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from nebulae.astro.padargs import BORDER, CONSTANT, REFLECT, fpad_list, mode_name

from .craft import Craft

__all__ = ["CONSTANT", "REFLECT", "BORDER", "Pad", "Identity"]


class Pad(Craft):
    """Pad the trailing dimensions in F.pad order (left, right, top, bottom, front, back); an int pads every
    spatial dimension (all but N and C). Modes: CONSTANT (with `value`; negative pads crop), REFLECT, BORDER."""

    def __init__(self, padding, mode=CONSTANT, value: float = 0.0, scope: str = "PAD"):
        super().__init__(scope)
        self.padding, self.mode, self.value = fpad_list(padding), mode_name(mode), float(value)

    def run(self, x):
        pads = self.padding
        if isinstance(pads, int):
            pads = (pads,) * (2 * (x.ndim - 2))
        if len(pads) > 2 * x.ndim:
            raise ValueError(f"Pad: {len(pads) // 2} padded dimensions for a {x.ndim}-D input")
        n = len(pads) // 2
        pairs = [(0, 0)] * (x.ndim - n) + [(pads[2 * i], pads[2 * i + 1]) for i in reversed(range(n))]
        if self.mode == "constant":
            return lax.pad(x, jnp.asarray(self.value, x.dtype), [(a, b, 0) for a, b in pairs])
        # negative pads crop first (as torch does), then the rest is filled by reflection or replication
        x = lax.pad(x, jnp.zeros((), x.dtype), [(min(a, 0), min(b, 0), 0) for a, b in pairs])
        pairs = [(max(a, 0), max(b, 0)) for a, b in pairs]
        if self.mode == "reflect":
            for axis, (a, b) in enumerate(pairs):
                if max(a, b) >= x.shape[axis]:
                    raise ValueError(
                        f"Pad: reflect padding {(a, b)} must be smaller than the size {x.shape[axis]} of axis {axis}"
                    )
            return jnp.pad(x, pairs, mode="reflect")
        return jnp.pad(x, pairs, mode="edge")


class Identity(Craft):
    """Return the input unchanged."""

    def __init__(self, scope: str = "IDENTITY"):
        super().__init__(scope)

    def run(self, x):
        return x
