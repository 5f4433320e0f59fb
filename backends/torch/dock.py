"""The torch dock namespace: every craft, context and helper the front `nebulae.astro.dock` serves.

Each concern module lists its public crafts in `__all__`; this module gathers them, so adding a
craft means adding it to its module (and that module's `__all__`) on both engines.
"""

from nebulae.astro import init as _init
from nebulae.astro import padding as _padding
from nebulae.astro import schedule as _schedule

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

Craft = craft.Craft
Rudder, Prober, Nozzle = mode.Rudder, mode.Prober, mode.Nozzle
coat, shell = tensor.coat, tensor.shell
autoPad = _padding.autoPad

__all__ = ["autoPad", *_init.__all__, *[n for n in _schedule.__all__ if n not in ("Schedule", "rate")]]
for _name in __all__:
    if _name not in globals():
        globals()[_name] = getattr(_init, _name, None) or getattr(_schedule, _name)
for _module in _MODULES:
    for _name in _module.__all__:
        globals()[_name] = getattr(_module, _name)
        __all__.append(_name)
del _module, _name
