"""coat and shell on torch: NumPy (or Python) data onto the engine's device, and back."""

from __future__ import annotations

import numpy as np
import torch

from nebulae.astro import checks, transfer

__all__ = ["coat", "shell"]

_device = torch.device("cpu")


def set_device(device: str | torch.device) -> None:
    global _device
    _device = torch.device(device)


def device() -> torch.device:
    return _device


def refuse_in_step(what: str) -> None:
    """coat/shell are host transfers: refused inside a step's run, as on JAX, where they cannot run."""
    from . import step

    if step.current() is not None:
        raise RuntimeError(checks.host_transfer_in_step(what))


def coat(datum, as_const: bool = True):
    """Put a number, NumPy array or tensor on the engine's device; `as_const=False` makes it require grad.

    Refused inside a step's run (pass data in as arguments of the step call).
    """
    refuse_in_step("coat")
    return _coat(datum, as_const)


def _coat(datum, as_const: bool = True):
    return transfer.coat_tree(datum, lambda leaf: _coat_leaf(leaf, as_const))


def _coat_leaf(datum, as_const: bool):
    if isinstance(datum, torch.Tensor):
        tensor = datum.to(_device, non_blocking=True)
    else:
        tensor = torch.from_numpy(np.ascontiguousarray(transfer.host_array(datum))).to(_device, non_blocking=True)
    return tensor if as_const else tensor.detach().requires_grad_(True)


def shell(datum, as_np: bool = True):
    """Bring a tensor back from the device: a NumPy array, or a Python scalar for one element.

    Refused inside a step's run (return the value from the step and shell it outside).
    """
    refuse_in_step("shell")
    return transfer.shell_tree(datum, lambda leaf: _shell_leaf(leaf, as_np))


def _shell_leaf(datum, as_np: bool):
    if not isinstance(datum, torch.Tensor):
        return datum
    if not as_np:
        return datum.detach().cpu()
    return datum.item() if datum.numel() == 1 else datum.detach().cpu().numpy()


def devices() -> list[str]:
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return names


def synchronize() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def set_float32(mode: str) -> None:
    # through torch's legacy switches: its precision query (called by inductor and users) refuses a state set
    # through a mix of them and the per-backend fp32_precision ones. 'full' differs from torch's own default,
    # whose cuDNN convolutions run TF32; TF32 applies where the hardware has it (NVIDIA Ampere and later)
    torch.set_float32_matmul_precision("high" if mode == "tf32" else "highest")
    torch.backends.cudnn.allow_tf32 = mode == "tf32"
