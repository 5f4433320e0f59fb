"""Value checks: whether crafts verify the VALUES of their inputs (class labels in range, ...).

Shapes and dtypes are always checked. Values cannot be checked inside a compiled JAX step without
a device-to-host round trip every step, so value checks are off by default on both engines; with
them on (`nebulae.Law.CHECKS = True` or `NEB_CHECKS=1`), a bad value raises the same ValueError on
both engines (torch: checked eagerly on the host; JAX: `jax.experimental.checkify` inside the
step, raised once the step's new state is written back). What each craft does with bad values
when checks are off is stated in its docstring.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

_TRUE = {"1", "true", "yes", "on"}
_enabled: bool | None = None


def enabled() -> bool:
    """Whether value checks are on (`Law.CHECKS`, default from the environment variable NEB_CHECKS)."""
    if _enabled is None:
        return os.environ.get("NEB_CHECKS", "").strip().lower() in _TRUE
    return _enabled


def enable(flag: bool = True) -> None:
    """Turn value checks on or off for this process."""
    global _enabled
    if not isinstance(flag, bool):
        raise TypeError(f"nebulae: Law.CHECKS takes True or False, got {flag!r}")
    _enabled = flag


def render(message: str, values: dict) -> str:
    """The check's message with its values filled in as Python numbers (the same text on both engines)."""
    return message.format(**{k: _plain(v) for k, v in values.items()})


def _plain(v):
    item = getattr(v, "item", None)
    return item() if callable(item) else v


def host_transfer_in_step(what: str) -> str:
    """The error for a host transfer inside a step (the same text on both engines)."""
    return (
        f"{what}() was called inside a step's run; host transfers are refused there on both engines "
        "(on JAX a host value would be frozen into the compiled step). "
        + (
            "Coat the data outside and pass it as an argument of the step call, or build it from the inputs "
            "(dock constants, dock.Gauss for noise)"
            if what == "coat"
            else "Return the value from the step and shell() it outside"
        )
    )


def checker(verify: Callable[[Any, str, dict], None]) -> Callable[..., None]:
    """An engine's `check(ok, message, **values)` from its `verify(ok, message, values)` (which raises where
    `ok` is False): the check runs only while value checks are on."""

    def check(ok: Any, message: str, **values: Any) -> None:
        """Raise ValueError(message with `values`) where `ok` is False, when value checks are on.

        `values` are scalars shown in the message (`{name}` fields), e.g. the first bad label.
        """
        if enabled():
            verify(ok, message, values)

    return check
