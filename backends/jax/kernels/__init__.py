"""The JAX kernels every front craft calls through `self.ops`: `base.py` and one module per craft family.

Each module implements its family's `Kernels` protocol (nebulae/astro/crafts/<family>.py), where the
kernels are documented; `OPS` gathers them into one namespace.
"""

from nebulae.backends import gather_ops

OPS = gather_ops(__name__)
