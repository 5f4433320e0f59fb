"""What runs inside a craft's `run` on both engines, and a clear error for the common torch-only idioms.

Portable on both engines: Python operators (+ - * / // % ** @, comparisons), indexing and slicing, `.shape`,
`.ndim`, `.dtype`, `.T` (of a 2-D array), `.reshape(...)`, `.sum()` / `.mean()` / `.max()` without arguments or
with one axis (`.sum(1)`), and every dock craft. Engine-specific: torch tensor methods (`x.view`,
`x.flatten(1)`, `x.size(0)`, `x.permute`, `x.unsqueeze`, `x.float()`, `x.detach()`, ...) and turning an array
into a Python value inside `run` (`float(t)`, `int(t)`, `t.item()`, `if t > 0:`), which a compiled JAX step
cannot do. On JAX, such an error met while the step is traced is re-raised as a TypeError that names the idiom
and its portable form.
"""

from __future__ import annotations

import re

_TENSOR_METHODS = {  # torch-only tensor methods -> the portable form
    "view": "x.reshape(...)",
    "permute": "dock.Permute(...) (or x.transpose with a full permutation)",
    "unsqueeze": "x.reshape(...) or x[:, None]",
    "squeeze": "x.reshape(...) or indexing",
    "contiguous": "nothing (drop the call)",
    "dim": "x.ndim",
    "numel": "x.size on JAX / x.numel() on torch: use math.prod(x.shape)",
    "size": "x.shape[k]",
    "float": "a dock cast or return the array and convert outside the step",
    "long": "integer arrays given as step arguments",
    "int": "integer arrays given as step arguments",
    "cpu": "return the array from the step and dock.shell it outside",
    "cuda": "an Engine(GPU) (cockpit) instead of moving tensors by hand",
    "detach": "nothing inside a step (gradients flow only into optz(loss))",
    "numpy": "return the array from the step and dock.shell it outside",
    "values": "x.max(axis) returns values only on JAX: use dock crafts for (values, indices)",
    "masked_fill": "dock.Where(mask, value, x)",
    "clamp": "dock.Clip(...)",
}

_HINTS = [
    (
        re.compile(r"array\.view\(\) is not supported"),
        "x.view(...) is torch-only inside run: use x.reshape(...), which both engines run",
    ),
    (
        re.compile(r"Unexpected value for 'order' argument"),
        "x.flatten(start_dim) is torch-only inside run: use dock.Flatten(start_dim) or x.reshape(x.shape[0], -1)",
    ),
    (
        re.compile(r"'int' object is not callable"),
        "x.size(k) is torch-only inside run (x.size is a number on JAX): use x.shape[k]",
    ),
    (
        re.compile(r"transpose permutation isn't a permutation"),
        "x.transpose(a, b) swaps two axes on torch only: use dock.Permute (or a full permutation)",
    ),
]

_CONCRETE = (
    "an array was turned into a Python value inside run (float(t), int(t), bool(t), t.item(), or an `if`/`while` "
    "on an array), which a compiled JAX step cannot do: return the value from the step and convert it outside, "
    "or use dock.Where for a choice"
)


def hint(error: BaseException) -> str | None:
    """The portable advice for an engine error raised while a step's `run` was traced, or None."""
    text = str(error)
    names = {c.__name__ for c in type(error).__mro__}
    if "ConcretizationTypeError" in names:
        return _CONCRETE
    if isinstance(error, AttributeError):
        found = re.search(r"Tracer has no attribute (\w+)", text)
        if found and found.group(1) in _TENSOR_METHODS:
            method = found.group(1)
            return f"x.{method}(...) is a torch-only tensor method inside run: use {_TENSOR_METHODS[method]}"
        return None
    for pattern, advice in _HINTS:
        if pattern.search(text):
            return advice
    return None


def portable_error(craft: str, error: BaseException) -> TypeError | None:
    """The TypeError to raise in place of `error` (met while `craft`'s step was traced), or None to keep it."""
    advice = hint(error)
    if advice is None:
        return None
    return TypeError(f"{craft}.run: {advice} (see the README, 'Inside run')")
