"""The step on torch: eager, so nothing is traced or compiled (mirrors `backends/jax/step.py`)."""

from __future__ import annotations

__all__: list[str] = []


def tracing() -> bool:
    """Whether a compiled step is being traced: never on torch, which runs steps eagerly."""
    return False


def recorder() -> None:
    """The recorder of the trace in progress: none on torch."""
    return None


def trace_count(craft) -> int:
    """How many times this craft's step was traced: 0 on torch."""
    return 0


def compile_seconds(craft) -> float:
    """Seconds spent compiling this craft's step: 0.0 on torch."""
    return 0.0
