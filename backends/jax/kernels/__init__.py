"""The JAX kernels every front craft calls through `self.ops`: one module per craft family.

Each module implements its family's `Kernels` protocol (nebulae/astro/crafts/<family>.py), where the
kernels are documented; `OPS` gathers them into one namespace.
"""

from nebulae.astro.crafts.binding import gather_kernels

from . import base, conv, linear

__all__ = ["OPS"]

OPS = gather_kernels([base, conv, linear])
