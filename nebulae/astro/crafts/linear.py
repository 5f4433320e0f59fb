"""Dense and Embed: weights stored (out, in) and (ntoken, token_dim) as torch.nn.Linear/Embedding store them."""

from __future__ import annotations

from typing import Any, Protocol

from nebulae.astro import init as _init

from .base import check_float_input

__all__ = ["Dense", "Embed"]


class Kernels(Protocol):
    def dense(self, x: Any, weight: Any, bias: Any, axis: int) -> Any:
        """y = x W^T + b over axis `axis` of x (W is (out, in); bias may be None)."""

    def embed(self, idx: Any, weight: Any) -> Any:
        """Rows of `weight` for integer indices `idx`; out-of-range indices: an error or NaN rows."""


class Dense:
    """Fully connected layer y = x W^T + b over axis `axis` (default last), as torch.nn.Linear.

    Args:
        in_chs: input features (the size of `axis`).
        out_chs: output features.
        axis: the axis of x that holds the features (default the last).
        w_init: weight initialiser or array of shape (out_chs, in_chs); default Xavier-normal (or what
            `default_init` set; `TorchUnif()` is torch.nn's default).
        b_init: bias initialiser or array of shape (out_chs,); default zeros (or what `default_init` set);
            `Void()` for no bias.
        scope: the name of this craft in checkpoints and summaries.

    The input must be floating-point (an integer batch is refused with a TypeError on both engines).
    """

    def __init__(self, in_chs: int, out_chs: int, axis: int = -1, w_init=None, b_init=None, scope: str = "DENSE"):
        super().__init__(scope)
        self.in_chs, self.out_chs, self.axis = in_chs, out_chs, axis
        self.param("weight", _init.make(_init.chosen(w_init, "w_init"), (out_chs, in_chs)))
        self.param("bias", _init.make(_init.chosen(b_init, "b_init"), (out_chs,), fan_in=in_chs))

    def run(self, x):
        check_float_input(self.ops, x, "Dense")
        return self.ops.dense(x, self.weight, self.bias, self.axis)

    def weights(self):
        return self.weight


class Embed:
    """Embedding lookup: integer indices (any shape) -> rows of `weight` (ntoken, token_dim), as torch.nn.Embedding.

    Args:
        ntoken: the number of rows (valid indices are 0 .. ntoken - 1).
        token_dim: the size of each row.
        w_init: initialiser or array of shape (ntoken, token_dim); default N(0, 1) as torch's.
        scope: the name of this craft in checkpoints and summaries.

    An index outside [0, ntoken) is an error on torch and NaN rows on JAX (a traced index cannot raise).
    """

    def __init__(self, ntoken: int, token_dim: int, w_init=None, scope: str = "EMBED"):
        super().__init__(scope)
        self.ntoken, self.token_dim = ntoken, token_dim
        self.param("weight", _init.make(_init.Normal() if w_init is None else w_init, (ntoken, token_dim)))

    def run(self, idx):
        if self.ops.is_floating(idx):
            raise TypeError(f"Embed needs integer indices, got dtype {self.ops.dtype_name(idx)}")
        return self.ops.embed(idx, self.weight)

    def weights(self):
        return self.weight
