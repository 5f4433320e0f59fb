"""Padding kernel on JAX: lax.pad for constants (negative pads crop), jnp.pad for reflection and replication."""

import jax.numpy as jnp
from jax import lax


def pad(x, pads, mode, value):
    n = len(pads) // 2
    pairs = [(0, 0)] * (x.ndim - n) + [(pads[2 * i], pads[2 * i + 1]) for i in reversed(range(n))]
    if mode == "constant":
        return lax.pad(x, jnp.asarray(value, x.dtype), [(a, b, 0) for a, b in pairs])
    # negative pads crop first (as torch does), then the rest is filled by reflection or replication
    x = lax.pad(x, jnp.zeros((), x.dtype), [(min(a, 0), min(b, 0), 0) for a, b in pairs])
    pairs = [(max(a, 0), max(b, 0)) for a, b in pairs]
    if mode == "reflect":
        for axis, (a, b) in enumerate(pairs):
            if max(a, b) >= x.shape[axis]:  # torch's F.pad refuses it with its own RuntimeError
                raise ValueError(
                    f"Pad: reflect padding {(a, b)} must be smaller than the size {x.shape[axis]} of axis {axis}"
                )
        return jnp.pad(x, pairs, mode="reflect")
    return jnp.pad(x, pairs, mode="edge")
