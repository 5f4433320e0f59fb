"""The torch dock namespace: every craft, context and helper the front `nebulae.astro.dock` serves."""

from nebulae.astro.init import Normal, Ones, Orthog, Uniform, Void, XavierNorm, XavierUnif, Zeros
from nebulae.astro.padding import autoPad
from nebulae.astro.schedule import CosLR, ExpLR, PolyLR, StepLR, WavyLR

from .activation import Relu
from .conv import Conv
from .craft import Craft
from .dropout import Dropout
from .ema import EMA
from .linear import Dense
from .loss import MSE, SftmXE
from .mode import Nozzle, Prober, Rudder
from .norm import BN
from .optim import Adam, AdamW, Lamb, Lion, Momentum, Nesterov, RMSProp
from .tensor import coat, shell

__all__ = [
    "Craft",
    "Rudder",
    "Prober",
    "Nozzle",
    "coat",
    "shell",
    "Dense",
    "Conv",
    "BN",
    "Dropout",
    "Relu",
    "MSE",
    "SftmXE",
    "Momentum",
    "Nesterov",
    "RMSProp",
    "Adam",
    "AdamW",
    "Lion",
    "Lamb",
    "EMA",
    "StepLR",
    "PolyLR",
    "CosLR",
    "ExpLR",
    "WavyLR",
    "autoPad",
    "Void",
    "XavierNorm",
    "XavierUnif",
    "Normal",
    "Uniform",
    "Orthog",
    "Ones",
    "Zeros",
]
