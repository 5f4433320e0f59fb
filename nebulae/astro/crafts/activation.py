"""Activations: Relu, LRelu, PRelu, Gelu, Silu, Tanh, Sigm, Sftm, LogSoftmax and Sftp, as torch.nn computes them.

The parameter-free ones share one kernel, `activate(how, x)`, which calls the engine's function directly.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from .base import check_float_input

__all__ = ["Relu", "LRelu", "PRelu", "Gelu", "Silu", "Tanh", "Sigm", "Sftm", "LogSoftmax", "Sftp"]


class Kernels(Protocol):
    def activate(self, how: str, x: Any) -> Any:
        """Element-wise `how` of x: 'relu', 'gelu' (exact erf form), 'silu', 'tanh', 'sigmoid' or 'softplus'
        (beta 1; above 20 it returns x itself, torch's threshold)."""

    def leaky_relu(self, x: Any, alpha: float) -> Any:
        """x where x > 0, else alpha * x."""

    def prelu(self, x: Any, weight: Any) -> Any:
        """x where x > 0, else weight * x, with a learnable (1,) `weight` cast to x's dtype."""

    def softmax(self, x: Any, axis: int) -> Any:
        """exp(x) / sum(exp(x)) along `axis`."""

    def log_softmax(self, x: Any, axis: int) -> Any:
        """x - logsumexp(x) along `axis`, computed stably (as torch.nn.functional.log_softmax)."""


class _Activation:
    """A parameter-free activation: `run(x)` is `activate(how, x)`."""

    how = ""

    def run(self, x):
        return self.ops.activate(self.how, x)


class Relu(_Activation):
    """max(x, 0), as torch.nn.ReLU.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    how = "relu"

    def __init__(self, scope: str = "RELU"):
        super().__init__(scope)


class LRelu:
    """Leaky ReLU: x where x > 0, else alpha * x, as torch.nn.LeakyReLU.

    Args:
        alpha: the slope for negative inputs.
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, alpha: float = 0.2, scope: str = "LRELU"):
        super().__init__(scope)
        self.alpha = float(alpha)

    def run(self, x):
        return self.ops.leaky_relu(x, self.alpha)


class PRelu:
    """Parametric ReLU with one learnable slope `weight` of shape (1,), as torch.nn.PReLU.

    Args:
        alpha: the slope's initial value.
        scope: the name of this craft in checkpoints and summaries.

    The input must be floating-point (an integer batch is refused with a TypeError on both engines).
    """

    def __init__(self, alpha: float = 0.2, scope: str = "PRELU"):
        super().__init__(scope)
        self.alpha = float(alpha)
        self.param("weight", np.full((1,), alpha, np.float32))

    def run(self, x):
        check_float_input(self.ops, x, "PRelu")
        return self.ops.prelu(x, self.weight)

    def weights(self):
        return self.weight


class Gelu(_Activation):
    """Gaussian error linear unit, exact erf form: x * Phi(x) (torch's default, not the tanh approximation).

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    how = "gelu"

    def __init__(self, scope: str = "GELU"):
        super().__init__(scope)


class Silu(_Activation):
    """Sigmoid linear unit (swish): x * sigmoid(x), as torch.nn.SiLU.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    how = "silu"

    def __init__(self, scope: str = "SILU"):
        super().__init__(scope)


class Tanh(_Activation):
    """Hyperbolic tangent.

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    how = "tanh"

    def __init__(self, scope: str = "TANH"):
        super().__init__(scope)


class Sigm(_Activation):
    """Logistic sigmoid 1 / (1 + exp(-x)).

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    how = "sigmoid"

    def __init__(self, scope: str = "SIGM"):
        super().__init__(scope)


class Sftp(_Activation):
    """Softplus log(1 + exp(x)) with beta 1; above 20 it returns x itself (torch's threshold).

    Args:
        scope: the name of this craft in checkpoints and summaries.
    """

    how = "softplus"

    def __init__(self, scope: str = "SFTP"):
        super().__init__(scope)


class Sftm:
    """Softmax along `axis`, as torch.nn.Softmax(dim=axis).

    Args:
        axis: the axis that sums to one (default the last).
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, axis: int = -1, scope: str = "SFTM"):
        super().__init__(scope)
        self.axis = int(axis)

    def run(self, x):
        return self.ops.softmax(x, self.axis)


class LogSoftmax:
    """log(softmax(x)) along `axis`, computed stably, as torch.nn.LogSoftmax(dim=axis) (pair it with NLL).

    Args:
        axis: the axis to normalise over, as Sftm's (default the last; torch's LogSoftmax has no default).
        scope: the name of this craft in checkpoints and summaries.
    """

    def __init__(self, axis: int = -1, scope: str = "LOGSOFTMAX"):
        super().__init__(scope)
        self.axis = int(axis)

    def run(self, x):
        return self.ops.log_softmax(x, self.axis)
