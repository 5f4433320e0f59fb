"""Gathering an engine's dock namespace: one place for the logic both `backends/*/dock.py` share."""

from nebulae.astro import init as _init
from nebulae.astro import padding as _padding
from nebulae.astro import schedule as _schedule


def gather(namespace: dict, modules: list) -> list[str]:
    """Fill `namespace` with the front helpers and every name in each module's `__all__`; return `__all__`."""
    craft, mode, tensor = (namespace[n] for n in ("craft", "mode", "tensor"))
    namespace["Craft"] = craft.Craft
    namespace["Rudder"], namespace["Prober"], namespace["Nozzle"] = mode.Rudder, mode.Prober, mode.Nozzle
    namespace["coat"], namespace["shell"] = tensor.coat, tensor.shell
    namespace["autoPad"] = _padding.autoPad
    names = ["autoPad", *_init.__all__, *[n for n in _schedule.__all__ if n not in ("Schedule", "rate")]]
    for name in names:
        if name not in namespace:
            namespace[name] = getattr(_init, name, None) or getattr(_schedule, name)
    for module in modules:
        for name in module.__all__:
            namespace[name] = getattr(module, name)
            names.append(name)
    return names
