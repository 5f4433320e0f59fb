"""Activation crafts on torch."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from nebulae.astro.args import check_float_input

from .craft import Craft
from .legacy import parameter

__all__ = ["Relu", "LRelu", "PRelu", "Gelu", "Silu", "Tanh", "Sigm", "Sftm", "Sftp"]


class Relu(Craft):
    """max(x, 0)."""

    def __init__(self, scope: str = "RELU"):
        super().__init__(scope)

    def run(self, x):
        return F.relu(x)


class LRelu(Craft):
    """Leaky ReLU: x where x > 0, else alpha * x."""

    def __init__(self, alpha: float = 0.2, scope: str = "LRELU"):
        super().__init__(scope)
        self.alpha = float(alpha)

    def run(self, x):
        return F.leaky_relu(x, self.alpha)


class PRelu(Craft):
    """Parametric ReLU with one learnable slope `weight` of shape (1,), initialised to alpha (as torch.nn.PReLU)."""

    def __init__(self, alpha: float = 0.2, scope: str = "PRELU"):
        super().__init__(scope)
        self.weight = parameter(np.full((1,), alpha, np.float32))

    def run(self, x):
        check_float_input(x.is_floating_point(), x.dtype, type(self).__name__)
        return F.prelu(x, self.weight.to(x.dtype))

    def weights(self):
        return self.weight


class Gelu(Craft):
    """Gaussian error linear unit, exact erf form: x * Phi(x) (torch's default, not the tanh approximation)."""

    def __init__(self, scope: str = "GELU"):
        super().__init__(scope)

    def run(self, x):
        return F.gelu(x)


class Silu(Craft):
    """Sigmoid linear unit (swish): x * sigmoid(x)."""

    def __init__(self, scope: str = "SILU"):
        super().__init__(scope)

    def run(self, x):
        return F.silu(x)


class Tanh(Craft):
    """Hyperbolic tangent."""

    def __init__(self, scope: str = "TANH"):
        super().__init__(scope)

    def run(self, x):
        return torch.tanh(x)


class Sigm(Craft):
    """Logistic sigmoid 1 / (1 + exp(-x))."""

    def __init__(self, scope: str = "SIGM"):
        super().__init__(scope)

    def run(self, x):
        return torch.sigmoid(x)


class Sftm(Craft):
    """Softmax along `axis` (default the last)."""

    def __init__(self, axis: int = -1, scope: str = "SFTM"):
        super().__init__(scope)
        self.axis = axis

    def run(self, x):
        return F.softmax(x, self.axis)


class Sftp(Craft):
    """Softplus log(1 + exp(x)) with beta 1; above 20 it returns x itself (torch's threshold)."""

    def __init__(self, scope: str = "SFTP"):
        super().__init__(scope)

    def run(self, x):
        return F.softplus(x)
