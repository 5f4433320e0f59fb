"""Worker-side probes: peak memory (host RSS, device) and the CPU thread counts of the engines in use.

Nothing here imports an engine: torch or jax is consulted only when the worker already imported it.
"""

from __future__ import annotations

import os
import resource
import sys

from .common import peak_rss_mb


def peak_device_mb() -> float | None:
    """Peak device memory in MB of the engine(s) this process uses on a GPU; None on CPU (or unknown)."""
    peaks = []
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        peaks.append(torch.cuda.max_memory_allocated() / 2**20)
    jax = sys.modules.get("jax")
    if jax is not None:
        try:
            device = jax.devices()[0]
            stats = device.memory_stats() if device.platform != "cpu" else None
        except Exception:  # a backend without memory statistics
            stats = None
        if stats and "peak_bytes_in_use" in stats:
            peaks.append(stats["peak_bytes_in_use"] / 2**20)
    return max(peaks) if peaks else None


def peak_memory() -> dict:
    """Peak RSS of this process, of its largest finished child (if any) and peak device memory, in MB."""
    out = {"peak_rss_mb": peak_rss_mb()}
    children = peak_rss_mb(resource.RUSAGE_CHILDREN)
    if children > 0:
        out["peak_rss_children_mb"] = children
    device = peak_device_mb()
    if device is not None:
        out["peak_device_mb"] = device
    return out


def cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def thread_counts() -> dict:
    """CPU thread counts of the engines this process imported (torch intra/inter-op; XLA CPU = one per core)."""
    out: dict = {}
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch_threads"] = torch.get_num_threads()
        out["torch_interop_threads"] = torch.get_num_interop_threads()
    if "jax" in sys.modules:
        # XLA's CPU client sizes its intra-op pool to the schedulable cores (no public query for it).
        out["xla_cpu_threads"] = cores()
        out["xla_flags"] = os.environ.get("XLA_FLAGS", "")
    return out
