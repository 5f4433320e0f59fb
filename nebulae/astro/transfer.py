"""What coat and shell do on every engine to containers and host data; the engines move the leaves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def coat_tree(datum: Any, leaf: Callable[[Any], Any]) -> Any:
    """`leaf` applied inside dicts, lists and tuples of arrays; a list of numbers is one array (a leaf)."""
    if isinstance(datum, dict):
        return {k: coat_tree(v, leaf) for k, v in datum.items()}
    if isinstance(datum, (list, tuple)) and datum and not isinstance(datum[0], (int, float, bool)):
        return type(datum)(coat_tree(v, leaf) for v in datum)
    return leaf(datum)


def shell_tree(datum: Any, leaf: Callable[[Any], Any]) -> Any:
    """`leaf` applied inside dicts, lists and tuples."""
    if isinstance(datum, dict):
        return {k: shell_tree(v, leaf) for k, v in datum.items()}
    if isinstance(datum, (list, tuple)):
        return type(datum)(shell_tree(v, leaf) for v in datum)
    return leaf(datum)


def host_array(datum: Any) -> np.ndarray:
    """A number or array-like as the NumPy array to coat: float64 becomes float32 (both engines compute in 32 bits)."""
    array = np.asarray(datum)
    return array.astype(np.float32) if array.dtype == np.float64 else array


def host_value(array: np.ndarray) -> Any:
    """What shell returns for a host array: a Python scalar for one element, else the array."""
    return array.item() if array.size == 1 else array
