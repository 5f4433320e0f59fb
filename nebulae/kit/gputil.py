"""GPUtil: which NVIDIA GPUs this process may use, and how much memory each has free, through NVML.

NVML comes from the `nvidia-ml-py` package (module `pynvml`), imported when a query runs; nothing
here ever starts `nvidia-smi`. On a machine without NVIDIA drivers (or without `pynvml`) every query
reports no GPUs instead of raising. Indices are NVML's, i.e. PCI bus order; `cockpit.Engine` sets
``CUDA_DEVICE_ORDER=PCI_BUS_ID`` so CUDA numbers the GPUs the same way. When ``CUDA_VISIBLE_DEVICES``
is already set (by a scheduler, say), only the GPUs it lists are reported.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import NamedTuple

__all__ = ["GPUtil", "GpuInfo"]

_lock = threading.Lock()  # nvmlInit/nvmlShutdown are reference counted; keep queries from interleaving


class GpuInfo(NamedTuple):
    """One GPU: NVML index, product name, total and free memory in MiB."""

    index: int
    name: str
    total: int
    free: int


class GPUtil:
    """Lists the NVIDIA GPUs visible to this process with their memory (NVML); no GPUs without drivers."""

    def devices(self) -> list[GpuInfo]:
        """Every GPU this process may use, in NVML index order (empty without NVIDIA drivers)."""
        try:
            import pynvml
        except ImportError:
            return []
        with _lock:
            try:
                pynvml.nvmlInit()
            except pynvml.NVMLError:
                return []
            try:
                return _query(pynvml)
            finally:
                with contextlib.suppress(pynvml.NVMLError):
                    pynvml.nvmlShutdown()

    def count(self) -> int:
        """How many GPUs this process may use."""
        return len(self.devices())

    def available(self, ngpus: int = 1, least_mem: int = 2048) -> list[GpuInfo]:
        """Up to `ngpus` GPUs with at least `least_mem` MiB free, most free memory first.

        Fewer (possibly none) come back when fewer qualify; each entry is (index, name, total MiB, free MiB).
        """
        if not isinstance(ngpus, int) or isinstance(ngpus, bool) or ngpus < 1:
            raise ValueError(f"ngpus must be a positive integer, got {ngpus!r}")
        if least_mem < 0:
            raise ValueError(f"least_mem must be >= 0 MiB, got {least_mem!r}")
        fitting = [g for g in self.devices() if g.free >= least_mem]
        fitting.sort(key=lambda g: (-g.free, g.index))
        return fitting[:ngpus]


def _query(nvml) -> list[GpuInfo]:
    allowed = _visible()
    out = []
    for index in range(nvml.nvmlDeviceGetCount()):
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            if allowed is not None and str(index) not in allowed and _uuid(nvml, handle) not in allowed:
                continue
            name = nvml.nvmlDeviceGetName(handle)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        except nvml.NVMLError:
            continue  # a GPU that fell off the bus or is not accessible: not usable
        if isinstance(name, bytes):
            name = name.decode(errors="replace")
        out.append(GpuInfo(index, str(name), int(memory.total) // 2**20, int(memory.free) // 2**20))
    return out


def _uuid(nvml, handle) -> str:
    uuid = nvml.nvmlDeviceGetUUID(handle)
    return uuid.decode() if isinstance(uuid, bytes) else str(uuid)


def _visible() -> set[str] | None:
    """The entries of CUDA_VISIBLE_DEVICES (indices or GPU UUIDs), or None when it is not set."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    return {v.strip() for v in value.split(",") if v.strip()}
