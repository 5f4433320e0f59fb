"""Random crafts: Dropout (element-wise or channel-wise, train mode only) and Gauss noise.

Each draws from its own stream: on JAX a key and a counter in the craft's state (seeded from the initialiser
stream), advanced on every draw, so a compiled step draws anew each step without retracing; on torch from
torch's global RNG (the seed is drawn all the same, keeping both engines' initialiser streams in step). The two
engines' draws differ.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Dropout", "Gauss"]


class Kernels(Protocol):
    def dropout_stream(self) -> tuple:
        """A random stream (key, counter) seeded from the initialiser stream (torch draws from its own generator
        and keeps only the seed: (seed, None))."""

    def dropout(self, x: Any, p: float, dim: int, stream: tuple) -> Any:
        """`x` with elements (dim 1) or whole channels (dim 2, 3: one draw per sample and channel) zeroed with
        probability `p`, the rest scaled by 1 / (1 - p)."""

    def gauss(self, x: Any, stream: tuple) -> Any:
        """Standard normal noise shaped like `x`, in its dtype."""


class Dropout:
    """Zero elements (dim=1) or whole channels (dim=2, 3) with probability `p_drop` in train mode, scaling the
    rest by 1 / (1 - p_drop), as torch.nn.Dropout / Dropout2d / Dropout3d; eval mode passes x through.

    Args:
        p_drop: the drop probability, in [0, 1).
        dim: 1 drops elements, 2 or 3 drops whole channels of (N, C, *spatial) inputs.
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, p_drop: float, dim: int = 1, scope: str = "DROPOUT"):
        super().__init__(scope)
        if not 0.0 <= p_drop < 1.0:
            raise ValueError(f"Dropout p_drop must be in [0, 1), got {p_drop}")
        if dim not in (1, 2, 3):
            raise ValueError(f"Dropout dim must be 1 (element-wise), 2 or 3 (channel-wise), got {dim}")
        self.p_drop, self.dim = float(p_drop), dim
        self.key, self.count = self.ops.dropout_stream()

    def run(self, x):
        if self.p_drop == 0.0 or not self.is_training():
            return x
        return self.ops.dropout(x, self.p_drop, self.dim, (self.key, self.count))


class Gauss:
    """Standard normal noise shaped like `x` (its dtype too), drawn anew on every call, in any mode.

    Used for reparameterised sampling (VAE).

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, scope: str = "GAUSS"):
        super().__init__(scope)
        self.key, self.count = self.ops.dropout_stream()

    def run(self, x):
        return self.ops.gauss(x, (self.key, self.count))
