"""Value checks on torch: verified eagerly on the host when checks are on (see nebulae.astro.checks)."""

from __future__ import annotations

import torch

from nebulae.astro import checks

__all__ = ["check"]


def _verify(ok, message: str, values: dict) -> None:
    if not (bool(ok.all()) if isinstance(ok, torch.Tensor) else bool(ok)):
        raise ValueError(checks.render(message, values))


check = checks.checker(_verify)
