"""What a benchmark ran on: CPU model and cores, memory, GPUs, library versions, load and date.

Nothing here imports an engine (versions come from package metadata), so the parent of the
benchmark workers stays small.
"""

from __future__ import annotations

import datetime
import importlib.metadata as md
import os
import platform
import sys

from .memory import cores

DISTRIBUTIONS = ("numpy", "torch", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "h5py", "pillow")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux; platform.processor() elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    """Total physical memory in GiB, if known."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def gpus() -> list[str]:
    """The NVIDIA GPUs visible to this process ('name, total MiB'), through NVML; empty without any."""
    from nebulae.kit.gputil import GPUtil

    return [f"{g.name}, {g.total} MiB" for g in GPUtil().devices()]


def versions() -> dict[str, str]:
    """Installed versions of Python, nebulae and the libraries the benchmarks exercise."""
    out = {"python": platform.python_version()}
    for dist in ("nebulae", *DISTRIBUTIONS):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def describe() -> dict:
    """A JSON-ready description of this machine and the moment (UTC) it is taken."""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host_os": f"{platform.system()} {platform.release()}",
        "cpu": cpu_model(),
        "cores": cores(),
        "cpu_count": os.cpu_count(),
        "memory_gib": round(memory_gib() or 0.0, 1),
        "gpus": gpus(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "versions": versions(),
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS") if k in os.environ},
        "python_executable": sys.executable,
    }


def summary(info: dict) -> str:
    """One line naming the machine: CPU, cores, memory, GPUs and the engine versions."""
    v = info["versions"]
    gpu = "; ".join(info["gpus"]) or "no GPU"
    return (
        f"{info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, {gpu}; "
        f"torch {v['torch']}, jax {v['jax']}, flax {v['flax']}; {info['date']}"
    )
