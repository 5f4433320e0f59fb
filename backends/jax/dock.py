"""The JAX dock namespace: every craft, context and helper the front `nebulae.astro.dock` serves."""

from nebulae.astro.init import Normal, Ones, Orthog, Uniform, Void, XavierNorm, XavierUnif, Zeros

from .activation import Relu
from .craft import Craft
from .linear import Dense
from .mode import Nozzle, Prober, Rudder
from .tensor import coat, shell

__all__ = [
    "Craft",
    "Rudder",
    "Prober",
    "Nozzle",
    "coat",
    "shell",
    "Dense",
    "Relu",
    "Void",
    "XavierNorm",
    "XavierUnif",
    "Normal",
    "Uniform",
    "Orthog",
    "Ones",
    "Zeros",
]
