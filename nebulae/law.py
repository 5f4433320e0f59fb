"""Law: the process-wide choice of engine, and the one place that binds it.

`Law.CORE` names the engine ('pytorch', alias 'torch', or 'jax'; case-insensitive). The
environment variable ``NEB_CORE`` gives the default; with neither, 'pytorch'. The engine is
bound on the first engine-specific use (the first `dock.Craft`, `dock.coat`, ...); after that a
different CORE is refused with an error that says which engine is bound and where.

`seed_engine(n)` (what `kit.destine` calls) seeds the bound engine's global generator now, or, before
the binding, remembers `n` and seeds the engine when it binds (the last seed given wins).
"""

from __future__ import annotations

import importlib.util
import os
import threading
import traceback
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nebulae.backend import Backend

ENGINES = {"pytorch": "torch", "torch": "torch", "jax": "jax"}
CANONICAL = {"torch": "pytorch", "jax": "jax"}
EXTRAS = {"torch": ("torch",), "jax": ("jax", "flax", "optax")}
# torch comes first from its own index: the default PyPI wheel on Linux is the multi-GB CUDA build.
INSTALL = {
    "torch": "pick the CPU or the CUDA build of torch (the tested one is 2.13.0): "
    "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu "
    "(or .../whl/cu128 for CUDA 12.8)",
    "jax": "pip install 'nebulae[jax]' (on a CUDA 12 GPU also 'nebulae[cuda12]')",
}

_lock = threading.RLock()
_chosen: str | None = None  # canonical name set through Law.CORE
_bound: str | None = None  # canonical name once a backend was imported
_bound_where: str = ""
_backend: Backend | None = None
_seed: int | None = None  # an engine seed given before the binding, applied when the engine binds
_float32: str | None = None  # set through Law.FLOAT32
FLOAT32_MODES = ("full", "tf32")


def canonical(name: object) -> str:
    """Return the canonical engine name ('pytorch' or 'jax') for `name`, or raise ValueError."""
    if not isinstance(name, str) or name.strip().lower() not in ENGINES:
        valid = ", ".join(repr(k) for k in ENGINES)
        raise ValueError(f"nebulae: unknown engine {name!r}; valid names are {valid} (case-insensitive)")
    return CANONICAL[ENGINES[name.strip().lower()]]


def _default() -> str:
    env = os.environ.get("NEB_CORE")
    if env:
        try:
            return canonical(env)
        except ValueError as e:
            raise ValueError(f"{e} (from the environment variable NEB_CORE)") from None
    return "pytorch"


def _float32_mode(mode: object, where: str) -> str:
    name = str(mode).strip().lower()
    if name not in FLOAT32_MODES:
        raise ValueError(f"nebulae: {where} must be 'full' or 'tf32', got {mode!r}")
    return name


def _float32_default() -> str:
    env = os.environ.get("NEB_FLOAT32")
    return _float32_mode(env, "NEB_FLOAT32 (environment variable)") if env else "full"


class _LawMeta(type):
    @property
    def CORE(cls) -> str:
        """The engine in force: the bound one, else the chosen one, else NEB_CORE, else 'pytorch'."""
        return _bound or _chosen or _default()

    @CORE.setter
    def CORE(cls, name: str) -> None:
        global _chosen
        engine = canonical(name)
        with _lock:
            if _bound is not None and engine != _bound:
                raise RuntimeError(
                    f"nebulae: the engine is already bound to {_bound!r} (bound at {_bound_where}); "
                    f"it cannot switch to {engine!r} in this process. Set nebulae.Law.CORE (or NEB_CORE) "
                    "before the first model, tensor or step is built."
                )
            _chosen = engine

    @property
    def CHECKS(cls) -> bool:
        """Whether crafts check the values of their inputs (class labels ...); default from NEB_CHECKS, else off.

        See `nebulae.astro.checks`: on, a bad value raises the same ValueError on both engines.
        """
        from nebulae.astro import checks

        return checks.enabled()

    @CHECKS.setter
    def CHECKS(cls, flag: bool) -> None:
        from nebulae.astro import checks

        checks.enable(flag)

    @property
    def FLOAT32(cls) -> str:
        """How float32 matrix products and convolutions run: 'full' (default; float32 throughout, so both engines
        and CPU and GPU agree) or 'tf32' (TensorFloat-32 on GPUs that have it: ~10 bits of mantissa in the
        products, several times faster). The default comes from NEB_FLOAT32. XLA on a GPU would otherwise use
        TF32-class products and torch TF32 convolutions but float32 matmuls."""
        return _float32 or _float32_default()

    @FLOAT32.setter
    def FLOAT32(cls, mode: str) -> None:
        global _float32
        mode = _float32_mode(mode, "Law.FLOAT32")
        with _lock:
            _float32 = mode
            module = _backend
        if module is not None:
            module.set_float32(mode)

    @property
    def BOUND(cls) -> str | None:
        """The bound engine's canonical name, or None before the first engine-specific use."""
        return _bound


class Law(metaclass=_LawMeta):
    """Process-wide settings: `Law.CORE` selects the engine before anything engine-specific is built;
    `Law.CHECKS` turns value checks on; `Law.FLOAT32` chooses full float32 or TF32 products."""


def _where() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    for frame in reversed(traceback.extract_stack()[:-2]):
        if not os.path.abspath(frame.filename).startswith(here) and "importlib" not in frame.filename:
            return f"{frame.filename}:{frame.lineno}"
    return "<nebulae internals>"


def backend() -> Backend:
    """Bind the engine named by `Law.CORE` (once) and return its backend package (see `nebulae.backend`)."""
    global _bound, _bound_where, _backend
    if _backend is not None:
        return _backend
    with _lock:
        if _backend is not None:
            return _backend
        engine = Law.CORE
        short = ENGINES[engine]
        for dist in EXTRAS[short]:
            if importlib.util.find_spec(dist) is None:
                raise ImportError(
                    f"nebulae: the {engine!r} engine needs the package {dist!r}, which is not installed. "
                    f"Install it: {INSTALL[short]}"
                )
        module = _load(short)
        module.set_float32(Law.FLOAT32)
        if _seed is not None:  # before publishing: no thread sees the engine unseeded
            _seed_with(module, _seed)
        _bound, _bound_where, _backend = engine, _where(), module
        return module


def seed_engine(seed: int) -> None:
    """Seed the engine's global random generator: the bound one now, else the one that binds later, when it binds.

    Args:
        seed: a non-negative integer, handed to the backend's `manual_seed` (checked by the caller; JAX has none).
    """
    global _seed
    with _lock:
        if _backend is None:
            _seed = seed
            return
        module = _backend
    _seed_with(module, seed)


def _seed_with(module: Backend, seed: int) -> None:
    if module.manual_seed is not None:  # JAX has no global generator
        module.manual_seed(seed)


def _load(short: str) -> Backend:
    """Import the engine package `nebulae.backends.<short>`: the one place the front imports an engine."""
    if short == "torch":
        from nebulae.backends import torch as package
    else:
        from nebulae.backends import jax as package
    return package


def bound_backend() -> Backend | None:
    """The bound backend package, or None when nothing is bound yet (never binds)."""
    return _backend
