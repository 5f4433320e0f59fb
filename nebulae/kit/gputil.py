"""GPUtil: which NVIDIA GPUs this process may use, and how much memory each has free, through NVML.

NVML comes from the `nvidia-ml-py` package (module `pynvml`), imported when a query runs; nothing
here ever starts `nvidia-smi`. On a machine without NVIDIA drivers (or without `pynvml`) every query
reports no GPUs instead of raising. Indices are NVML's, i.e. PCI bus order; `cockpit.Engine` sets
``CUDA_DEVICE_ORDER=PCI_BUS_ID`` so CUDA numbers the GPUs the same way. When ``CUDA_VISIBLE_DEVICES``
is already set (by a scheduler, say), only the GPUs it lists are reported.

`monitor(sec)` samples temperature, utilisation and used memory on a background thread (NVML
queries, no subprocess, no temporary files); `status()` stops it and returns the time-weighted
averages per GPU (trapezoid rule over the sample times), printing the table on rank 0.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Sequence
from typing import NamedTuple

from nebulae.kit.rank import rank

__all__ = ["GPUtil", "GpuInfo", "GpuStat", "time_average"]

_lock = threading.Lock()  # nvmlInit/nvmlShutdown are reference counted; keep queries from interleaving


class GpuInfo(NamedTuple):
    """One GPU: NVML index, product name, total and free memory in MiB."""

    index: int
    name: str
    total: int
    free: int


class GpuStat(NamedTuple):
    """One GPU's time-weighted averages over a monitoring period: temperature (Celsius), utilisation (%),
    used memory (MiB), and how many samples and seconds they cover."""

    index: int
    name: str
    temperature: float
    utilisation: float
    memory: float
    samples: int
    seconds: float


class GPUtil:
    """Lists the NVIDIA GPUs visible to this process with their memory (NVML), and monitors them on a
    background thread; no GPUs (and no error) without drivers."""

    def __init__(self):
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._samples: dict[int, list[tuple[float, float, float, float]]] = {}
        self._names: dict[int, str] = {}
        self.table = ""  # the text of the last status() table

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

    def monitor(self, sec: float = 5) -> None:
        """Start sampling every visible GPU's temperature, utilisation and used memory every `sec` seconds
        on a background thread (one sample at once, one more when `status()` stops it)."""
        if isinstance(sec, bool) or not isinstance(sec, (int, float)) or not sec > 0:
            raise ValueError(f"GPUtil.monitor: sec must be a positive number of seconds, got {sec!r}")
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("GPUtil.monitor: already monitoring; call status() to stop first")
        self._stop.clear()
        self._samples, self._names = {}, {}
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._sample_loop, args=(float(sec), started), name="nebulae-gputil", daemon=True
        )
        self._thread.start()
        started.wait()

    def status(self) -> list[GpuStat]:
        """Stop monitoring and return one GpuStat per GPU (time-weighted averages); rank 0 prints the table."""
        if self._thread is None:
            raise RuntimeError("GPUtil.status: nothing monitored; call monitor(sec) first")
        self._stop.set()
        self._thread.join()
        self._thread = None
        stats = []
        for index, samples in sorted(self._samples.items()):
            times = [s[0] for s in samples]
            averages = [time_average(times, [s[k] for s in samples]) for k in (1, 2, 3)]
            seconds = times[-1] - times[0] if times else 0.0
            stats.append(GpuStat(index, self._names[index], *averages, len(samples), seconds))
        self.table = _table(stats)
        if rank() == 0:
            print(self.table, flush=True)
        return stats

    def _sample_loop(self, sec: float, started: threading.Event) -> None:
        try:
            import pynvml
        except ImportError:
            started.set()
            return
        with _lock:
            try:
                pynvml.nvmlInit()
            except pynvml.NVMLError:
                started.set()
                return
        try:
            handles = self._handles(pynvml)
            while True:
                self._sample(pynvml, handles)
                started.set()
                if self._stop.wait(sec):
                    self._sample(pynvml, handles)
                    return
        finally:
            started.set()
            with _lock, contextlib.suppress(pynvml.NVMLError):
                pynvml.nvmlShutdown()

    def _handles(self, nvml) -> dict[int, object]:
        with _lock:
            handles = {}
            for g in _query(nvml):
                with contextlib.suppress(nvml.NVMLError):
                    handles[g.index] = nvml.nvmlDeviceGetHandleByIndex(g.index)
                    self._names[g.index] = g.name
            return handles

    def _sample(self, nvml, handles: dict[int, object]) -> None:
        with _lock:
            for index, handle in handles.items():
                try:
                    temp = nvml.nvmlDeviceGetTemperature(handle, getattr(nvml, "NVML_TEMPERATURE_GPU", 0))
                    util = nvml.nvmlDeviceGetUtilizationRates(handle).gpu
                    used = nvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20
                except nvml.NVMLError:
                    continue  # a GPU that stopped answering: keep what it gave so far
                self._samples.setdefault(index, []).append((time.monotonic(), float(temp), float(util), float(used)))


def time_average(times: Sequence[float], values: Sequence[float]) -> float:
    """The time-weighted mean of `values` sampled at `times` (trapezoid rule); the plain mean when the
    samples span no time, NaN without samples."""
    if len(times) != len(values):
        raise ValueError(f"time_average: {len(times)} times but {len(values)} values")
    if not values:
        return float("nan")
    span = times[-1] - times[0]
    if span <= 0:
        return sum(values) / len(values)
    area = sum((t1 - t0) * (v0 + v1) / 2 for t0, t1, v0, v1 in zip(times, times[1:], values, values[1:]))
    return area / span


def _table(stats: list[GpuStat]) -> str:
    if not stats:
        return "GPUtil: no NVIDIA GPU monitored (no driver, no pynvml, or none visible)"
    head = f"| {'GPU':>3} | {'Name':<24} | {'Temp C':>7} | {'Util %':>7} | {'Memory MiB':>10} | {'Seconds':>8} |"
    rule = "+" + "-" * (len(head) - 2) + "+"
    rows = [
        f"| {s.index:>3} | {s.name[:24]:<24} | {s.temperature:>7.1f} | {s.utilisation:>7.1f} | {s.memory:>10.0f} "
        f"| {s.seconds:>8.1f} |"
        for s in stats
    ]
    return "\n".join([rule, head, rule, *rows, rule])


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
