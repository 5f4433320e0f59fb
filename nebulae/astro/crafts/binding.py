"""Binding a front craft spec to an engine's base craft: a real, picklable, documented class."""

from __future__ import annotations

import inspect
import sys
from types import SimpleNamespace


def bind(spec: type, base: type, module: str) -> type:
    """`class <spec.__name__>(spec, base)` living at module level in `module`.

    The class keeps the spec's docstring and `__init__` signature (Flax's metaclass would otherwise
    show `(*args, **kwargs)`).
    """
    name = spec.__name__
    cls = type(name, (spec, base), {"__module__": module, "__qualname__": name, "__doc__": spec.__doc__})
    if "__signature__" in spec.__dict__:  # a spec whose **kwargs stand for named arguments (the optimizers)
        cls.__signature__ = spec.__signature__
    else:
        signature = inspect.signature(spec.__init__)
        cls.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])
    return cls


def bind_all(namespace: dict, specs: dict[str, type], base: type) -> list[str]:
    """Bind every spec into `namespace` (a dock module's globals); the names bound."""
    for name, spec in specs.items():
        namespace[name] = bind(spec, base, namespace["__name__"])
    return list(specs)


def gather_kernels(modules: list) -> SimpleNamespace:
    """One namespace (`self.ops`) of the kernels in an engine's family kernel modules (base plus every family)."""
    from . import FAMILIES

    names = {m.__name__.rsplit(".", 1)[-1] for m in modules}
    missing = {"base", *FAMILIES} - names
    if missing:
        raise RuntimeError(f"kernel modules missing for the craft families {sorted(missing)}")
    ops = SimpleNamespace()
    for module in modules:
        for name in kernel_names(module.__name__.rsplit(".", 1)[-1]):
            if hasattr(ops, name):
                raise RuntimeError(f"kernel {name!r} of {module.__name__} is already declared by another family")
            if not hasattr(module, name):
                raise RuntimeError(
                    f"{module.__name__} lacks the kernel {name!r} its family's Kernels protocol declares"
                )
            setattr(ops, name, getattr(module, name))
    return ops


def kernel_names(family: str) -> list[str]:
    """The kernels the `Kernels` protocol of `family` ('base' or a craft family) declares."""
    from . import family as family_module

    protocol = family_module(family).Kernels
    return [name for name, fn in vars(protocol).items() if callable(fn) and not name.startswith("_")]


def build_dock(namespace: dict, base: type, modules: list, updaters: dict[str, type]) -> list[str]:
    """Fill an engine dock module's `namespace`: the catalogue bound to `base`, the updaters (optimizers, EMA)
    bound to the engine's updater bases (`updaters`: {'Optimizer': ..., 'EMA': ...}), the front helpers
    (initialisers, schedules, autoPad) and every name in each engine module's `__all__`; `__all__`."""
    from nebulae.astro import init as _init
    from nebulae.astro import padding as _padding
    from nebulae.astro import schedule as _schedule

    from . import FAMILIES, catalogue, family
    from . import updaters as _updaters

    namespace["Craft"] = base
    names = ["Craft", "autoPad", *_init.__all__, *[n for n in _schedule.__all__ if n not in ("Schedule", "rate")]]
    namespace["autoPad"] = _padding.autoPad
    for name in names[2:]:
        namespace[name] = getattr(_init, name, None) or getattr(_schedule, name)
    for module in modules:
        for name in module.__all__:
            namespace[name] = getattr(module, name)
            names.append(name)
    names += bind_all(namespace, catalogue(), base)
    for name in FAMILIES:  # the constants a family declares (NEAREST, ..., CONSTANT, ...)
        module = family(name)
        for constant in getattr(module, "CONSTANTS", ()):
            namespace[constant] = getattr(module, constant)
            names.append(constant)
    for name in _updaters.__all__:
        spec = getattr(_updaters, name)
        engine = next(updaters[c.__name__] for c in spec.__mro__ if c.__name__ in updaters)
        namespace[name] = bind(spec, engine, namespace["__name__"])
        names.append(name)
    base.dock = sys.modules[namespace["__name__"]]
    return names


def bind_hangar(namespace: dict, base: type) -> list[str]:
    """Bind every hangar craft into an engine's hangar module `namespace`; the model names."""
    from nebulae.astro import hangar

    bind_all(namespace, hangar.specs(), base)
    base.hangar = sys.modules[namespace["__name__"]]
    return list(hangar.MODELS)
