"""Initialisers, computed with NumPy so the same seed gives the same weights on both engines.

Each initialiser is a callable `init(shape) -> np.ndarray` (float32). Shapes follow PyTorch's
layouts: dense weights (out, in), conv kernels (out, in/groups, *kernel), so fan-in and fan-out
are computed exactly as `torch.nn.init` computes them.
"""

from __future__ import annotations

import math

import numpy as np

_rng = np.random.default_rng(0)


def seed(value: int) -> None:
    """Reseed the initialiser stream: crafts built afterwards get reproducible weights."""
    global _rng
    _rng = np.random.default_rng(value)


def stream() -> np.random.Generator:
    """The NumPy generator that initialisers (and per-craft RNG seeds) draw from."""
    return _rng


def draw_seed() -> int:
    """A seed for a craft's own random stream (dropout), drawn from the initialiser stream.

    Every engine draws it at the same point of construction, so the weights of layers built
    afterwards stay identical across engines.
    """
    return int(_rng.integers(0, 2**31 - 1))


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of `shape` with PyTorch's convention."""
    if len(shape) < 2:
        n = int(shape[0]) if shape else 1
        return n, n
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return int(shape[1]) * receptive, int(shape[0]) * receptive


class Initializer:
    """Base class: subclasses produce an array for a shape; `scale` multiplies the result."""

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def __call__(self, shape, dtype="float32") -> np.ndarray:
        return (self.draw(tuple(int(s) for s in shape)) * self.scale).astype(dtype)

    def for_fan_in(self, fan_in: int) -> Initializer:
        """This initialiser for a bias whose layer's weight has `fan_in` inputs (most ignore it)."""
        return self

    def draw(self, shape: tuple[int, ...]) -> np.ndarray:
        raise TypeError(f"{type(self).__name__} must implement draw(shape)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scale={self.scale})"


class Void(Initializer):
    """No initialisation; as a bias initialiser it means 'no bias'."""

    def draw(self, shape):
        return np.zeros(shape)


class XavierNorm(Initializer):
    """Glorot normal: N(0, 2 / (fan_in + fan_out)). The default weight initialiser."""

    def draw(self, shape):
        fi, fo = fans(shape)
        return _rng.normal(0.0, math.sqrt(2.0 / (fi + fo)), shape)


class XavierUnif(Initializer):
    """Glorot uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out))."""

    def draw(self, shape):
        fi, fo = fans(shape)
        a = math.sqrt(6.0 / (fi + fo))
        return _rng.uniform(-a, a, shape)


class Normal(Initializer):
    """N(mean, std)."""

    def __init__(self, mean: float = 0.0, std: float = 1.0, scale: float = 1.0):
        super().__init__(scale)
        self.mean, self.std = mean, std

    def draw(self, shape):
        return _rng.normal(self.mean, self.std, shape)


class Uniform(Initializer):
    """U(min, max)."""

    def __init__(self, min: float = -1.0, max: float = 1.0, scale: float = 1.0):  # noqa: A002
        super().__init__(scale)
        self.low, self.high = min, max

    def draw(self, shape):
        return _rng.uniform(self.low, self.high, shape)


class Orthog(Initializer):
    """(Semi-)orthogonal rows or columns, as torch.nn.init.orthogonal_ (QR of a Gaussian matrix)."""

    def draw(self, shape):
        rows = shape[0]
        cols = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        flat = _rng.normal(0.0, 1.0, (rows, cols))
        if rows < cols:
            flat = flat.T
        q, r = np.linalg.qr(flat)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return q.reshape(shape)


class Ones(Initializer):
    """All ones (times scale)."""

    def draw(self, shape):
        return np.ones(shape)


class Zeros(Initializer):
    """All zeros. The default bias initialiser."""

    def draw(self, shape):
        return np.zeros(shape)


class TorchUnif(Initializer):
    """torch.nn's default for Linear and Conv layers: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    For a weight this is `kaiming_uniform_(a=sqrt(5))`, fan_in computed from its shape as torch does; for a bias,
    fan_in is that of its layer's weight (Dense, Conv and TransConv pass it), as torch.nn's `reset_parameters`.
    Select it per craft (`Dense(4, 3, w_init=TorchUnif(), b_init=TorchUnif())`) or for every layer built
    afterwards with `default_init(TorchUnif(), TorchUnif())`.
    """

    def __init__(self, scale: float = 1.0, fan_in: int | None = None):
        super().__init__(scale)
        self.fan_in = fan_in

    def for_fan_in(self, fan_in: int) -> Initializer:
        return TorchUnif(self.scale, fan_in)

    def draw(self, shape):
        fan_in = self.fan_in if self.fan_in is not None else fans(shape)[0]
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        return _rng.uniform(-bound, bound, shape)


_defaults: dict[str, Initializer] = {"w_init": XavierNorm(), "b_init": Zeros()}


def default_init(w_init: Initializer | None = None, b_init: Initializer | None = None) -> tuple:
    """Set the initialisers Dense, Conv and TransConv use when their w_init / b_init are not given (for crafts
    built afterwards); return the previous (w_init, b_init) so a caller can restore them.

    Args:
        w_init: the weight initialiser (default at start: XavierNorm()); None keeps the current one.
        b_init: the bias initialiser (default at start: Zeros()); None keeps the current one.

    `default_init(TorchUnif(), TorchUnif())` gives torch.nn's defaults.
    """
    before = (_defaults["w_init"], _defaults["b_init"])
    for name, value in (("w_init", w_init), ("b_init", b_init)):
        if value is not None:
            if not isinstance(value, Initializer):
                raise TypeError(f"default_init: {name} must be an initialiser such as TorchUnif(), got {value!r}")
            _defaults[name] = value
    return before


def chosen(init, name: str):
    """`init` as given, or the current default of `name` ('w_init' or 'b_init') when it is None."""
    return _defaults[name] if init is None else init


def make(init, shape, dtype="float32", fan_in: int | None = None) -> np.ndarray | None:
    """Materialise `init` for `shape`: an Initializer, an array (used as is) or Void (-> None).

    `fan_in`: for a bias, the fan-in of its layer's weight (read by TorchUnif).
    """
    if isinstance(init, Void):
        return None
    if isinstance(init, Initializer):
        return (init if fan_in is None else init.for_fan_in(fan_in))(shape, dtype)
    array = np.asarray(init, dtype=dtype)
    if tuple(array.shape) != tuple(shape):
        raise ValueError(f"initial value has shape {array.shape}, expected {tuple(shape)}")
    return array


__all__ = [
    "Initializer",
    "Void",
    "XavierNorm",
    "XavierUnif",
    "Normal",
    "Uniform",
    "Orthog",
    "Ones",
    "Zeros",
    "TorchUnif",
    "default_init",
]
