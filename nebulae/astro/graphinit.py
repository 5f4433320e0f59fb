"""Engine-neutral NumPy set-up shared by both engines' graph crafts."""

import numpy as np

from nebulae.astro import init as _init


def filter_weights(w_init, n: int) -> np.ndarray:
    """A learnable filter of n coefficients, drawn as an (n, 1) weight (the original's shape and fans)."""
    return _init.make(_init.XavierNorm() if w_init is None else w_init, (n, 1)).reshape(n)
