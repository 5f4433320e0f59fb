"""The torch dock namespace: every craft, context and helper the front `nebulae.astro.dock` serves.

Each concern module lists its public crafts in `__all__`; this module gathers them, so adding a
craft means adding it to its module (and that module's `__all__`) on both engines.
"""

from nebulae.astro.namespace import gather

from . import (
    activation,
    attention,
    augment,
    conv,
    craft,
    dropout,
    elementwise,
    ema,
    graph,
    linalg,
    linear,
    loss,
    metric,
    mode,
    norm,
    optim,
    pad,
    pool,
    recurrent,
    reduce,
    resample,
    shape,
    tensor,
)

_MODULES = [
    craft,
    mode,
    tensor,
    linear,
    conv,
    pad,
    pool,
    graph,
    activation,
    dropout,
    norm,
    recurrent,
    attention,
    shape,
    resample,
    elementwise,
    reduce,
    linalg,
    loss,
    metric,
    optim,
    ema,
    augment,
]

__all__ = gather(globals(), _MODULES)
