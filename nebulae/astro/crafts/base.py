"""What every craft spec may rely on: the engine's base craft and the kernels every engine supplies."""

from __future__ import annotations

from typing import Any, Protocol


class Kernels(Protocol):
    """Dtype queries every engine supplies (judged by the engine, read the same way by every craft)."""

    def is_floating(self, x: Any) -> bool:
        """Whether `x` has a floating-point dtype."""

    def dtype_name(self, x: Any) -> str:
        """`x`'s dtype as NumPy names it ('float32', 'int64', ...)."""


def check_float_input(ops: Any, x: Any, craft: str) -> None:
    """Raise TypeError unless a parametric float craft's input `x` is floating-point, the same on both engines."""
    if not ops.is_floating(x):
        raise TypeError(
            f"{craft} needs a floating-point input, got dtype {ops.dtype_name(x)}: cast to float "
            "first, e.g. x.astype('float32') / 255, or End()/Whiten() in the Comburant"
        )
