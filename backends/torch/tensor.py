"""coat and shell on torch: NumPy (or Python) data onto the engine's device, and back."""

from __future__ import annotations

import numpy as np
import torch

from nebulae.astro import checks

__all__ = ["coat", "shell"]

_device = torch.device("cpu")


def set_device(device: str | torch.device) -> None:
    """Make `coat` place data on this device (called by cockpit.Engine)."""
    global _device
    _device = torch.device(device)


def device() -> torch.device:
    """The device `coat` places data on."""
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
    if isinstance(datum, dict):
        return {k: _coat(v, as_const) for k, v in datum.items()}
    if isinstance(datum, (list, tuple)) and datum and not isinstance(datum[0], (int, float, bool)):
        return type(datum)(_coat(v, as_const) for v in datum)
    if isinstance(datum, torch.Tensor):
        tensor = datum.to(_device, non_blocking=True)
    else:
        array = np.asarray(datum)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        tensor = torch.from_numpy(np.ascontiguousarray(array)).to(_device, non_blocking=True)
    if not as_const:
        tensor = tensor.detach().requires_grad_(True)
    return tensor


def shell(datum, as_np: bool = True):
    """Bring a tensor back from the device: a NumPy array, or a Python scalar for one element.

    Refused inside a step's run (return the value from the step and shell it outside).
    """
    refuse_in_step("shell")
    if isinstance(datum, dict):
        return {k: shell(v, as_np) for k, v in datum.items()}
    if isinstance(datum, (list, tuple)):
        return type(datum)(shell(v, as_np) for v in datum)
    if not isinstance(datum, torch.Tensor):
        return datum
    if not as_np:
        return datum.detach().cpu()
    if datum.numel() == 1:
        return datum.item()
    return datum.detach().cpu().numpy()


def devices() -> list[str]:
    """The devices torch can use here."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return names


def synchronize() -> None:
    """Wait until every computation queued on the engine's devices has finished (so a clock reading includes it)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def manual_seed(seed: int) -> None:
    """Seed the engine's global random generator (torch: CPU and every CUDA device; JAX has none: no-op)."""
    torch.manual_seed(seed)
