"""Dtype queries and parameter handling shared by the torch kernels."""

import torch


def is_floating(x: torch.Tensor) -> bool:
    return x.is_floating_point()


def dtype_name(x: torch.Tensor) -> str:
    return str(x.dtype).removeprefix("torch.")
