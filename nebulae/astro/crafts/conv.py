"""Convolutions: Conv and TransConv in 1, 2 or 3 dimensions, kernels stored as torch stores them (OIHW / IOHW)."""

from __future__ import annotations

from typing import Any, Protocol

from nebulae.astro import init as _init
from nebulae.astro import padding as _pad

from .base import check_float_input
from .craft import CONV_KERNEL

__all__ = ["Conv", "TransConv"]


class Kernels(Protocol):
    def conv(self, x: Any, weight: Any, bias: Any, stride: tuple, pairs: tuple, dilation: tuple, groups: int) -> Any:
        """N-D convolution of NC* `x` with an O(I/groups)* `weight`, (before, after) padding per spatial dimension."""

    def trans_conv(
        self, x: Any, weight: Any, bias: Any, stride: tuple, pairs: tuple, dilation: tuple, groups: int, size: tuple
    ) -> Any:
        """The adjoint of `conv` (weight laid out I(O/groups)*), `pairs` cropping the full output to `size`."""


def window(kernel, what: str) -> tuple[int, ...]:
    """A kernel size as a tuple: an int k is the 2-D (k, k) as torch's Conv2d reads it."""
    kernel = (int(kernel), int(kernel)) if isinstance(kernel, int) else tuple(int(k) for k in kernel)
    if len(kernel) not in (1, 2, 3):
        raise ValueError(f"{what} supports 1-, 2- and 3-D kernels, got kernel {kernel}")
    if min(kernel) <= 0:
        raise ValueError(f"{what} needs a positive kernel size, got {kernel}")
    return kernel


def pad_pairs(padding, kernel: tuple, stride: tuple, dilation: tuple, what: str) -> tuple:
    """A padding argument (int, per-dimension, F.pad order, 'valid' or 'same') as (before, after) pairs."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return ((0, 0),) * len(kernel)
        if mode != "same":
            raise ValueError(f"{what}: padding must be an int, a sequence, 'same' or 'valid', got {padding!r}")
        if any(s != 1 for s in stride):
            raise ValueError(f"{what}: padding='same' needs stride 1 (as torch), got stride {stride}; use autoPad")
        return tuple(_pad.conv_pairs(_pad.autoPad(None, kernel, 1, dilation), len(kernel)))
    return tuple(_pad.conv_pairs(padding, len(kernel)))


def check_window(craft: str, size, kernel, pairs, dilation=None) -> None:
    """Raise ValueError unless the (dilated) kernel fits the padded input in every spatial dimension.

    `size` is the input's spatial size, `pairs` the (before, after) padding per dimension; shape-only, so
    it runs at trace time on JAX.
    """
    steps = dilation or (1,) * len(kernel)
    if all(n + a + b >= d * (k - 1) + 1 for n, k, d, (a, b) in zip(size, kernel, steps, pairs)):
        return
    size, kernel = tuple(int(n) for n in size), tuple(int(k) for k in kernel)
    pairs = tuple((int(a), int(b)) for a, b in pairs)
    padded = tuple(n + a + b for n, (a, b) in zip(size, pairs))
    if dilation is None:
        what, fix = f"kernel {kernel}", "a smaller kernel"
    else:
        spans = tuple(int(d) * (k - 1) + 1 for k, d in zip(kernel, dilation))
        what = f"kernel {kernel} with dilation {tuple(int(d) for d in dilation)} (span {spans})"
        fix = "a smaller kernel or dilation"
    raise ValueError(
        f"{craft}: {what} is larger than the padded input (input {size}, padding {pairs}, padded size {padded}); "
        f"use {fix}, more padding, or a larger input"
    )


def transposed_sizes(size, kernel, stride, pairs, dilation, out_size) -> tuple:
    """The output size of a transposed convolution, checked against `out_size` (None: the nominal size)."""
    targets = []
    for i, (n, k, s, d, (a, b)) in enumerate(zip(size, kernel, stride, dilation, pairs)):
        nominal = (n - 1) * s + d * (k - 1) + 1 - a - b
        m = nominal if out_size is None else out_size[i]
        if not nominal <= m < nominal + max(s, d) or m <= 0:
            raise ValueError(
                f"TransConv: out_size {out_size} cannot be reached from input size {tuple(size)} in dimension {i}:"
                f" with kernel {k}, stride {s}, dilation {d} and padding {(a, b)} it must be in"
                f" [{nominal}, {nominal + max(s, d) - 1}]"
            )
        targets.append(m)
    return tuple(targets)


class _Convolution:
    """What Conv and TransConv share: the window arguments, the weight and the bias."""

    def _setup(
        self, what, in_chs, out_chs, kernel, stride, padding, dilation, group, w_init, b_init, shape_of, layout=None
    ):
        self.kernel = window(kernel, what)
        ndim = len(self.kernel)
        if in_chs % group or out_chs % group:
            raise ValueError(f"{what}: in_chs {in_chs} and out_chs {out_chs} must both divide by group {group}")
        self.in_chs, self.out_chs, self.group = in_chs, out_chs, group
        self.stride = _pad.spatial(stride, ndim, "stride")
        self.dilation = _pad.spatial(dilation, ndim, "dilation")
        self.padding = tuple(padding) if isinstance(padding, list) else padding
        self.pairs = pad_pairs(padding, self.kernel, self.stride, self.dilation, what)
        shape = shape_of(in_chs, out_chs, group, self.kernel)
        w_init = _init.chosen(w_init, "w_init")
        declare = self.param if isinstance(w_init, _init.Initializer) else self.fixed
        declare("weight", _init.make(w_init, shape), layout)
        fan_in = _init.fans(shape)[0]  # torch's: in/group x kernel for Conv, out/group x kernel for TransConv
        self.param("bias", _init.make(_init.chosen(b_init, "b_init"), (out_chs,), fan_in=fan_in))

    def weights(self):
        return self.weight


class Conv(_Convolution):
    """1/2/3-D convolution chosen by the kernel's length, as torch.nn.Conv1d/2d/3d.

    Args:
        in_chs: input channels (axis 1 of the NC* input).
        out_chs: output channels.
        kernel: kernel size: a tuple of 1-3 ints, or one int k for a 2-D (k, k) kernel as torch's Conv2d.
        stride: an int or one int per spatial dimension.
        padding: an int, one int per dimension, 2·ndim ints in F.pad order (see `autoPad`), 'valid' (none)
            or 'same' (keeps the size; stride 1 only, as torch).
        dilation: an int or one int per spatial dimension.
        group: the number of groups; in_chs and out_chs must divide by it.
        w_init: weight initialiser (shape (out_chs, in_chs / group, *kernel)); default Xavier-normal (or what
            `default_init` set; `TorchUnif()` is torch.nn's default). A fixed array gives a non-trainable kernel
            (a buffer that is not exported).
        b_init: bias initialiser; default zeros (or what `default_init` set); `Void()` for no bias.
        scope: the name of this craft in checkpoints and summaries.

    The input must be floating-point (TypeError otherwise) and the dilated kernel must fit the padded input
    (ValueError otherwise).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel: int | tuple,
        stride: int | tuple = 1,
        padding: int | tuple | str = 0,
        dilation: int | tuple = 1,
        group: int = 1,
        w_init=None,
        b_init=None,
        scope: str = "CONV",
    ):
        super().__init__(scope)
        self._setup(
            "Conv", in_chs, out_chs, kernel, stride, padding, dilation, group, w_init, b_init,
            lambda i, o, g, k: (o, i // g, *k), CONV_KERNEL,
        )  # fmt: skip

    def run(self, x):
        check_float_input(self.ops, x, "Conv")
        check_window("Conv", x.shape[2:], self.kernel, self.pairs, self.dilation)
        return self.ops.conv(x, self.weight, self.bias, self.stride, self.pairs, self.dilation, self.group)


class TransConv(_Convolution):
    """1/2/3-D transposed convolution (the adjoint of `Conv` with the same kernel, stride, padding and dilation).

    Args:
        in_chs: input channels.
        out_chs: output channels.
        kernel: kernel size: a tuple of 1-3 ints, or one int k for a 2-D (k, k) kernel.
        stride: an int or one int per spatial dimension.
        padding: read as Conv reads it (asymmetric pairs included; >= 0); (before, after) crops `before`
            leading and `after` trailing elements of the full output.
        dilation: an int or one int per spatial dimension.
        group: the number of groups; in_chs and out_chs must divide by it.
        out_size: the exact spatial output size (keyword only), as torch's output_padding chooses it: it
            must lie in [nominal, nominal + max(stride, dilation) - 1]; None gives the nominal size.
        w_init: weight initialiser (shape (in_chs, out_chs / group, *kernel), as torch's ConvTransposeNd); default
            Xavier-normal (or what `default_init` set; `TorchUnif()` is torch.nn's default).
        b_init: bias initialiser; default zeros (or what `default_init` set); `Void()` for no bias.
        scope: the name of this craft in checkpoints and summaries.

    The arguments come in Conv's order, as torch.nn.ConvTranspose2d's (in, out, kernel, stride, padding);
    the input must be floating-point (TypeError otherwise).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel: int | tuple,
        stride: int | tuple = 1,
        padding: int | tuple = 0,
        dilation: int | tuple = 1,
        group: int = 1,
        *,
        out_size: int | tuple | None = None,
        w_init=None,
        b_init=None,
        scope: str = "TRANSCONV",
    ):
        super().__init__(scope)
        if isinstance(padding, str):
            raise ValueError(f"TransConv: padding must be ints (>= 0), got {padding!r}")
        self._setup(
            "TransConv", in_chs, out_chs, kernel, stride, padding, dilation, group, w_init, b_init,
            lambda i, o, g, k: (i, o // g, *k),
        )  # fmt: skip
        if any(p < 0 for pair in self.pairs for p in pair):
            raise ValueError(f"TransConv padding must be >= 0, got {padding}")
        ndim = len(self.kernel)
        self.out_size = None if out_size is None else _pad.spatial(out_size, ndim, "out_size")

    def run(self, x):
        check_float_input(self.ops, x, "TransConv")
        size = tuple(x.shape[2:])
        targets = transposed_sizes(size, self.kernel, self.stride, self.pairs, self.dilation, self.out_size)
        return self.ops.trans_conv(
            x, self.weight, self.bias, self.stride, self.pairs, self.dilation, self.group, targets
        )
