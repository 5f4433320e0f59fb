"""Value checks on torch: verified eagerly on the host when checks are on (see nebulae.astro.checks)."""

from __future__ import annotations

import torch

from nebulae.astro import checks

__all__ = ["check"]


def check(ok, message: str, **values) -> None:
    """Raise ValueError(message with `values`) where `ok` is False, when value checks are on.

    `values` are scalars shown in the message (`{name}` fields), e.g. the first bad label.
    """
    if not checks.enabled():
        return
    passed = bool(ok.all()) if isinstance(ok, torch.Tensor) else bool(ok)
    if not passed:
        raise ValueError(checks.render(message, values))
