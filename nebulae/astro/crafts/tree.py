"""`repr(craft)` on both engines: a torch-like indented tree of sub-crafts, the same text on both."""

from __future__ import annotations

import inspect

SIMPLE = (bool, int, float, str, type(None))
HIDDEN = {"scope", "w_init", "b_init"}


def _simple(value) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_simple(v) for v in value)
    return isinstance(value, SIMPLE)


def _default(value, default) -> bool:
    """Whether `value` is the default, also when a scalar default was expanded per dimension ((1, 1) for 1)."""
    if isinstance(value, tuple) and not isinstance(default, tuple):
        return all(v == default for v in value)
    return value == default


def arguments(craft) -> str:
    """The constructor arguments a craft keeps as attributes of the same name: required ones
    positionally, the others as `name=value` where they differ from the default."""
    try:
        params = list(inspect.signature(type(craft)).parameters.values())
    except (TypeError, ValueError):
        return ""
    shown = []
    for p in params:
        if p.name in HIDDEN or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        value = craft.__dict__.get(p.name, inspect.Parameter.empty)
        if value is inspect.Parameter.empty or not _simple(value):
            continue
        if p.default is inspect.Parameter.empty:
            shown.append(repr(value))
        elif not _default(value, p.default):
            shown.append(f"{p.name}={value!r}")
    return ", ".join(shown)


def render(craft) -> str:
    """`Name(args)` for a leaf; `Name(\\n  (child): ...\\n)` with one indented line per sub-craft."""
    head = f"{type(craft).__name__}({arguments(craft)}"
    lines = [f"({name}): {_node(child)}" for name, child in craft.sub_crafts()]
    if not lines:
        return head + ")"
    body = "\n".join(lines).replace("\n", "\n  ")
    return f"{head}\n  {body}\n)"


def _node(child) -> str:
    if isinstance(child, (list, tuple)):
        items = [(str(i), c) for i, c in enumerate(child)]
    elif isinstance(child, dict):
        items = list(child.items())
    elif hasattr(child, "sub_crafts"):
        return render(child)
    else:
        return repr(child)
    body = "\n".join(f"({k}): {_node(c)}" for k, c in items).replace("\n", "\n  ")
    return f"[\n  {body}\n]"
