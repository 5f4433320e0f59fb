"""Engine: the devices the bound engine uses, chosen before it initialises them; `craft.gear(engine)` places crafts."""

from __future__ import annotations

import os
from collections.abc import Sequence

from nebulae import law
from nebulae.kit.gputil import GpuInfo, GPUtil

__all__ = ["Engine", "CPU", "GPU"]

CPU = "CPU"
GPU = "GPU"


class Engine:
    """Select CPU or GPU devices for the bound engine and place crafts on them (`craft.gear(engine)`).

    device: CPU or GPU (the strings 'CPU'/'GPU', any case, are accepted). For GPU, `available_gpus`
    names GPUs by NVML index (plain ints, PCI bus order); otherwise `kit.GPUtil` picks the `ngpus`
    GPUs with the most free memory among those with at least `least_mem` MiB free. The process is
    then restricted to them (``CUDA_VISIBLE_DEVICES``, with ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` so CUDA
    counts like NVML) BEFORE the engine initialises its devices: build the Engine first. If torch
    initialised CUDA, or JAX its backends, with another set, a RuntimeError says it is too late.
    On a machine without usable GPUs, GPU raises a RuntimeError saying what was looked for.

    JAX memory policy: by default XLA reserves 75 % of every visible GPU when it starts, which
    starves other processes on a shared GPU. Unless you set one of XLA_PYTHON_CLIENT_PREALLOCATE,
    XLA_PYTHON_CLIENT_MEM_FRACTION or XLA_PYTHON_CLIENT_ALLOCATOR yourself, Engine(GPU) sets
    ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` before JAX starts: memory is taken as needed (as torch's
    caching allocator does). On a dedicated GPU, ``XLA_PYTHON_CLIENT_PREALLOCATE=true`` and
    ``XLA_PYTHON_CLIENT_MEM_FRACTION=.9`` trade that for slightly faster allocation. Engine(CPU) on
    JAX keeps JAX off the GPUs altogether (``jax_platforms='cpu'``) when it has not started yet.

    `chips` are the engine's devices (logical: cuda:0.. after masking), `chip` the one on which `place`
    puts crafts and `coat` puts data: the first, or under a Multiverse process world (torch: one
    process per GPU; LOCAL_RANK set by Multiverse or torchrun) the LOCAL_RANK-th. `gpus` are the chosen
    GPUs as (index, name, total MiB, free MiB). In a process world every rank of a node must choose the
    same GPUs, so GPUtil's choice there is by index among the GPUs with enough free memory, not by
    free memory (which changes as the ranks start).
    """

    def __init__(
        self,
        device: str = GPU,
        ngpus: int = 1,
        least_mem: int = 2048,
        available_gpus: Sequence[int] = (),
    ):
        self.device = _kind(device)
        self.gpus: list[GpuInfo] = []
        self._anchor = law.backend().anchor
        if self.device == GPU:
            self.gpus = _choose(ngpus, least_mem, available_gpus)
        self.chips = list(self._anchor.select_devices(self.device, tuple(g.index for g in self.gpus)))
        self.chip = self.chips[_local_rank() % len(self.chips)]

    def place(self, craft) -> None:
        """Put `craft` (all of its state) on this engine's first device and make `coat` target it."""
        self._anchor.place(craft, self.chip)

    def __repr__(self) -> str:
        if self.device == CPU:
            return f"Engine(CPU: {self.chip})"
        rows = ", ".join(f"GPU {g.index} {g.name} {g.free}/{g.total} MiB free" for g in self.gpus)
        return f"Engine(GPU: {rows})"


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def _kind(device) -> str:
    if isinstance(device, str) and device.strip().upper() in (CPU, GPU):
        return device.strip().upper()
    raise ValueError(f"Engine device must be CPU or GPU (or the strings 'CPU'/'GPU'), got {device!r}")


def _choose(ngpus: int, least_mem: int, available_gpus: Sequence[int]) -> list[GpuInfo]:
    """The GPUs to use: the given NVML indices (validated) or GPUtil's best `ngpus`."""
    if not isinstance(ngpus, int) or isinstance(ngpus, bool) or ngpus < 1:
        raise ValueError(f"ngpus must be a positive integer, got {ngpus!r}")
    util = GPUtil()
    present = util.devices()
    if not present:
        raise RuntimeError(
            f"Engine(GPU) found no usable NVIDIA GPU (looked for {ngpus} GPU(s) through NVML: no driver, no GPU, or "
            "CUDA_VISIBLE_DEVICES hides them all); use Engine(CPU) on this machine"
        )
    if available_gpus:
        given = list(available_gpus)
        bad = [g for g in given if not isinstance(g, int) or isinstance(g, bool) or g < 0]
        if bad or len(set(given)) != len(given):
            raise ValueError(f"available_gpus must be distinct non-negative GPU indices (ints), got {available_gpus!r}")
        by_index = {g.index: g for g in present}
        unknown = [g for g in given if g not in by_index]
        if unknown:
            raise ValueError(
                f"available_gpus names GPU(s) {unknown} that this process cannot use; usable: {sorted(by_index)}"
            )
        if len(given) < ngpus:
            raise ValueError(f"ngpus={ngpus} but available_gpus lists only {len(given)}: {given}")
        return [by_index[g] for g in given[:ngpus]]
    if "LOCAL_RANK" in os.environ:  # every rank of the node must agree: qualifying GPUs in index order
        chosen = sorted((g for g in present if g.free >= least_mem), key=lambda g: g.index)[:ngpus]
    else:
        chosen = util.available(ngpus, least_mem)
    if len(chosen) < ngpus:
        table = ", ".join(f"{g.index}: {g.free} MiB free" for g in present)
        raise RuntimeError(
            f"Engine(GPU) needs {ngpus} GPU(s) with at least {least_mem} MiB free; only {len(chosen)} qualify ({table})"
        )
    return chosen


def restrict_gpus(indices: Sequence[int], started: bool, engine: str, first: str) -> str:
    """Make only the NVML `indices` visible to CUDA (PCI order, as NVML counts) before `engine` starts; the list.

    Called by the engines' `anchor.select_devices`. When `engine` started its devices already (`started`) with
    another set, RuntimeError says that `first` (what to build the Engine before) must come first.
    """
    wanted = ",".join(str(i) for i in indices)
    current = os.environ.get("CUDA_VISIBLE_DEVICES")
    if started and current != wanted:
        raise RuntimeError(
            f"Engine(GPU) asks for GPUs {wanted} but {engine} initialised its devices already (CUDA_VISIBLE_DEVICES="
            f"{current!r}); build the Engine before {first}"
        )
    if not started:
        os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        os.environ["CUDA_VISIBLE_DEVICES"] = wanted
    return wanted


def no_gpu(wanted: str, engine: str, why: str) -> RuntimeError:
    """The error of an engine (`engine`, with its version) that has no usable GPU after the GPUs `wanted` were set."""
    return RuntimeError(f"Engine(GPU) selected GPUs {wanted} (CUDA_VISIBLE_DEVICES is set), but {engine} {why}")


def check_gpu_count(indices: Sequence[int], count: int, engine: str, note: str = "") -> None:
    """RuntimeError unless the engine (`engine`) shows as many GPUs (`count`) as the Engine selected (`indices`)."""
    if count != len(indices):
        wanted = ",".join(str(i) for i in indices)
        raise RuntimeError(
            f"Engine(GPU) selected {len(indices)} GPU(s) ({wanted}) but {engine} shows {count}: {engine} was "
            f"initialised{note} with another CUDA_VISIBLE_DEVICES"
        )
