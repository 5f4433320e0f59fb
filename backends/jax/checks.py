"""Value checks on JAX: `jax.experimental.checkify` inside a compiled step, a plain raise outside one."""

from __future__ import annotations

import jax
import numpy as np
from jax.experimental import checkify

from nebulae.astro import checks

__all__ = ["check"]

_SUFFIX = " (`check` failed)"


def _verify(ok, message: str, values: dict) -> None:
    if isinstance(ok, jax.core.Tracer):
        fixed = {k: v for k, v in values.items() if not isinstance(v, (jax.Array, np.ndarray, np.generic))}
        for k, v in fixed.items():  # checkify formats arrays only: put the rest in now
            message = message.replace("{" + k + "}", str(v))
        checkify.check(ok, message, **{k: v for k, v in values.items() if k not in fixed})
    elif not bool(np.all(np.asarray(ok))):
        raise ValueError(checks.render(message, {k: np.asarray(v) for k, v in values.items()}))


check = checks.checker(_verify)


def checked(fn):
    """`fn` with its value checks functionalised: it returns (error, result)."""
    return checkify.checkify(fn, errors=checkify.user_checks)


def throw(error) -> None:
    """Raise the first failed check of a checked step as ValueError (the message alone, as on torch)."""
    message = error.get()
    if message:
        first = message.split("\n", 1)[0]
        raise ValueError(first[: -len(_SUFFIX)] if first.endswith(_SUFFIX) else first)
