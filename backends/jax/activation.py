"""Activation crafts on JAX."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from nebulae.astro.args import check_float_input

from .craft import Craft
from .legacy import parameter

__all__ = ["Relu", "LRelu", "PRelu", "Gelu", "Silu", "Tanh", "Sigm", "Sftm", "Sftp"]

SOFTPLUS_THRESHOLD = 20.0  # torch's: above it softplus returns x


class Relu(Craft):
    """max(x, 0)."""

    def __init__(self, scope: str = "RELU"):
        super().__init__(scope)

    def run(self, x):
        return jax.nn.relu(x)


class LRelu(Craft):
    """Leaky ReLU: x where x > 0, else alpha * x."""

    def __init__(self, alpha: float = 0.2, scope: str = "LRELU"):
        super().__init__(scope)
        self.alpha = float(alpha)

    def run(self, x):
        return jnp.where(x > 0, x, x * self.alpha)


class PRelu(Craft):
    """Parametric ReLU with one learnable slope `weight` of shape (1,), initialised to alpha (as torch.nn.PReLU)."""

    def __init__(self, alpha: float = 0.2, scope: str = "PRELU"):
        super().__init__(scope)
        self.weight = parameter(np.full((1,), alpha, np.float32))

    def run(self, x):
        check_float_input(jnp.issubdtype(x.dtype, jnp.floating), x.dtype, type(self).__name__)
        slope = self.weight.get_value().astype(x.dtype)[0]
        return jnp.where(x > 0, x, slope * x)

    def weights(self):
        return self.weight


class Gelu(Craft):
    """Gaussian error linear unit, exact erf form: x * Phi(x) (torch's default, not the tanh approximation)."""

    def __init__(self, scope: str = "GELU"):
        super().__init__(scope)

    def run(self, x):
        return jax.nn.gelu(x, approximate=False)


class Silu(Craft):
    """Sigmoid linear unit (swish): x * sigmoid(x)."""

    def __init__(self, scope: str = "SILU"):
        super().__init__(scope)

    def run(self, x):
        return jax.nn.silu(x)


class Tanh(Craft):
    """Hyperbolic tangent."""

    def __init__(self, scope: str = "TANH"):
        super().__init__(scope)

    def run(self, x):
        return jnp.tanh(x)


class Sigm(Craft):
    """Logistic sigmoid 1 / (1 + exp(-x))."""

    def __init__(self, scope: str = "SIGM"):
        super().__init__(scope)

    def run(self, x):
        return jax.nn.sigmoid(x)


class Sftm(Craft):
    """Softmax along `axis` (default the last)."""

    def __init__(self, axis: int = -1, scope: str = "SFTM"):
        super().__init__(scope)
        self.axis = axis

    def run(self, x):
        return jax.nn.softmax(x, axis=self.axis)


class Sftp(Craft):
    """Softplus log(1 + exp(x)) with beta 1; above 20 it returns x itself (torch's threshold)."""

    def __init__(self, scope: str = "SFTP"):
        super().__init__(scope)

    def run(self, x):
        above = x > SOFTPLUS_THRESHOLD
        # the discarded branch sees 0 above the threshold, so neither it nor its gradient overflows
        soft = jnp.log1p(jnp.exp(jnp.where(above, 0.0, x)))
        return jnp.where(above, x, soft)
