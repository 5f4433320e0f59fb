"""Lazy package exports: a name is imported from its submodule on first access, so packages stay light."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def exports(package: str, table: Mapping[str, str]) -> Callable[[str], object]:
    """A module-level `__getattr__` for `package` that imports `package.<table[name]>` when `name` is first used."""

    def lookup(name: str):
        if name in table:
            return getattr(importlib.import_module(f"{package}.{table[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return lookup
