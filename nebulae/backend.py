"""The engine-facing interface, declared once: what the front calls on a backend package.

`nebulae.law.backend()` returns the bound engine package (`nebulae.backends.torch` or
`nebulae.backends.jax`) typed as `Backend`. The front reaches every engine part as an attribute of
it (`law.backend().anchor.save(...)`), never by importing a backend module by name. Each Protocol
documents its members once; the engine modules implement them without repeating the docstrings
(tests/test_backend_interface.py checks that both engines supply every member with the same
parameters).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, Protocol

__all__ = ["Backend", "TensorIO", "AnchorIO", "PendingAnchor", "Universe", "Summary", "KernelsIO"]


class TensorIO(Protocol):
    """`backend.tensor`: data onto the engine's device and back, devices, the global generator."""

    def coat(self, datum: Any, as_const: bool = True) -> Any:
        """Put a number, NumPy array or engine array on the engine's device (refused inside a step's run)."""

    def shell(self, datum: Any, as_np: bool = True) -> Any:
        """Bring an engine array back: a NumPy array, or a Python scalar for one element (refused inside a run)."""

    def devices(self) -> list[str]:
        """The devices the engine can use here."""

    def synchronize(self) -> None:
        """Wait until every computation queued on the engine's devices has finished (so a clock reading includes it)."""

    def set_device(self, device: Any) -> None:
        """Make `coat` place data on this device (called through `anchor.place` by cockpit.Engine)."""

    def device(self) -> Any:
        """The device `coat` places data on (None on JAX means its default device)."""


class PendingAnchor(Protocol):
    """An anchor on its way to disk, as `AnchorIO.save` returns it."""

    path: str  # the anchor's final path

    def wait(self) -> None:
        """Finish the save (raising RuntimeError naming the anchor if it failed); a second call does nothing."""


class AnchorIO(Protocol):
    """`backend.anchor`: a craft's whole engine state as one anchor (checkpoint), and the devices an Engine uses."""

    SUFFIX: str  # the anchor name's suffix: '.pth' (a torch file) or '' (an Orbax directory)
    COLLECTIVE: bool  # under a Multiverse, every process takes part in a save (else rank 0 alone writes)

    def step_of(self, craft: Any) -> int | None:
        """The number of updates applied by the optimizers inside `craft` (the largest), or None without one."""

    def swapped_emas(self, craft: Any) -> list[str]:
        """The paths (joined with '/') of the EMAs inside `craft` whose shadow weights are swapped in (after `on()`)."""

    def save(self, craft: Any, path: str, meta: dict, scope: str | None, asynchronous: bool) -> PendingAnchor:
        """Start writing the state of `craft` (within `scope`) and `meta` to the anchor `path`; return its pending
        save (`asynchronous=False`: finished before it returns). ValueError when nothing lies within `scope`."""

    def read(self, path: str, craft: Any) -> tuple[dict, dict[str, Any]]:
        """(meta, {parameter path: value}) of the anchor at `path`, placed for `craft`; ValueError (saying why)
        when it is not an anchor of this engine. Reading never runs code from the file."""

    def shapes(self, craft: Any) -> dict[str, tuple]:
        """{parameter path: shape} of everything `save` stores for `craft`."""

    def apply(self, craft: Any, state: dict[str, Any], meta: dict, restore_rng: bool) -> None:
        """Write `state` ({parameter path: value}, already checked) into `craft`; with `restore_rng`, the RNG too."""

    def is_complete(self, path: str) -> bool:
        """Whether `path` is a finished anchor of this engine (under its final name)."""

    def select_devices(self, kind: str, indices: Sequence[int]) -> list:
        """The devices for an Engine of `kind` 'CPU' or 'GPU' (restricted to the NVML `indices` before the engine
        initialises them); RuntimeError when that is too late or no such device is usable."""

    def place(self, craft: Any, device: Any) -> None:
        """Move `craft` (all of its state: parameters, buffers, optimizer and EMA state) to `device`; `coat` follows."""


class Universe(Protocol):
    """`backend.universe`: data parallelism (torch: a process per device and DDP; JAX: one process over a Mesh)."""

    SPAWNS: bool  # whether a Multiverse of several worlds starts one process per world

    def join(self, world: int, timeout: float) -> None:
        """Join the world of `world` devices described by the environment (a no-op when alone)."""

    def leave(self, clean: bool = True) -> None:
        """Leave the world (if joined); `clean` (the run ended without an error) waits for every rank first."""

    def rank(self) -> int:
        """This process's rank in the world (0 outside one)."""

    def size(self) -> int:
        """The number of processes in the world (1 outside one)."""

    def share(self, world: int) -> int:
        """How many of the `world` worlds (devices) one process drives."""

    def sync(self, craft: Any, sync_bn: bool, world: int, shard: str | None = None) -> Any:
        """Prepare `craft` for data-parallel training over `world` worlds; return what to use in its place.
        `shard` 'params': its parameters, gradients and optimizer state split over the worlds (None: replicated)."""

    def peer_fault(self, exc: BaseException) -> str | None:
        """'lost' / 'timeout' when `exc` only reports that the other ranks failed this one, else None."""

    def blame(self, exc: BaseException, account: str) -> str | None:
        """In a joined world whose universe raised `exc` in this process (before leaving): where the processes
        were started apart (JAX hosts), tell the others `account` (this rank's WorldError text) when `exc` is
        this rank's own fault, or return the account of the peer that failed first when `exc` only reports a
        lost peer; None when this rank is to blame or the launcher blames (torch's spawned ranks)."""

    def unwrap(self, craft: Any) -> Any:
        """The craft inside what `sync` returned (the craft itself when it was not wrapped)."""

    def reduce(self, value: Any, aggregate: bool) -> Any:
        """Every world's `value` combined: the mean, or the sum when `aggregate` (lists and tuples element-wise)."""


class Summary(Protocol):
    """`backend.summary`: what aerolog.Inspector needs to summarise a craft (given unwrapped: `universe.unwrap`)."""

    def parameters(self, craft: Any) -> list[tuple[str, tuple[int, ...], str, int, bool]]:
        """Every parameter and exported buffer (BN statistics) of `craft`: (path joined with '/', shape, dtype
        name, bytes per element, trainable), parameters first."""

    def layer_calls(self, craft: Any, args: tuple, kwargs: dict) -> list[dict]:
        """Run `craft(*args, **kwargs)` once in eval mode without gradients (state unchanged) and return one
        record per craft call, outer calls first: path, kinds (class names of its type's MRO), depth, input and
        output shapes, weight shape (None without one) and group count."""

    def export_onnx(self, craft: Any, args: tuple, kwargs: dict, path: str, opset: int) -> None:
        """Export `craft` run on `args`/`kwargs` to an ONNX file at `path` with opset `opset` (torch only; needs
        the onnx package; NotImplementedError on JAX)."""


class KernelsIO(Protocol):
    """`backend.kernels`: the layer kernels of every craft family (declared by each family's `Kernels` protocol)."""

    OPS: Any  # one namespace of them all: what a front craft reaches as `self.ops`


class Backend(Protocol):
    """A bound engine package, `nebulae.backends.<engine>`."""

    ENGINE: str  # the canonical engine name: 'pytorch' or 'jax'
    dock: ModuleType  # the dock namespace: the catalogue bound to the engine's Craft, modes, coat/shell, optimizers
    tensor: TensorIO
    anchor: AnchorIO
    universe: Universe
    summary: Summary
    kernels: KernelsIO
    hangar: ModuleType  # the hangar models bound to the engine's Craft
    # seeds the engine's global random generator (torch: CPU and every CUDA device); None where the engine has
    # none (JAX: each random craft owns a key drawn from nebulae's initialiser stream)
    manual_seed: Callable[[int], None] | None

    def devices(self) -> list[str]:
        """The devices the engine can use here (`tensor.devices`)."""

    def set_float32(self, mode: str) -> None:
        """Make float32 matrix products and convolutions 'full' float32 or 'tf32' (TensorFloat-32 on GPUs that
        have it); `Law.FLOAT32` calls it when the engine binds and on every later change."""
