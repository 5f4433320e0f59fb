"""Pool crafts on JAX (filled in by the dock catalogue work)."""

from __future__ import annotations

__all__: list[str] = []
