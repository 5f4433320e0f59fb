"""Multiverse: the same training script on one device or many (data parallelism on both engines).

Wrap the script's main function, `launch(mv)`, and call it::

    mv = Multiverse(launch, nworld=4)
    mv()          # launch(mv) runs in every world

Inside `launch`: `mv.init()`, `Engine(device, ngpus=mv.nworld)`, `net = mv.sync(net, tanks)`, and
`mv.reduce(value)` for metrics. torch runs one process per world (spawned; gloo on CPU, NCCL on
GPU; DDP), or the processes torchrun started. JAX runs one process over a device Mesh with axis
'data' (SPMD): state replicated (split with shard='params'), batches split on their first axis. On both engines a Tank's
`batch_size` is per world, so the global batch is `batch_size * nworld` either way.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from nebulae import law
from nebulae.cockpit.launch import WorldError, free_port, launch, raised

if TYPE_CHECKING:
    from nebulae.backend import Universe

__all__ = ["Multiverse", "WorldError"]

_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def _universe() -> Universe:
    return law.backend().universe


def _under_torchrun() -> bool:
    return all(v in os.environ for v in _TORCHRUN_VARS)


SHARDS = (None, "params")  # Multiverse(shard=...): replicated, or parameters + gradients + optimizer state split


class Multiverse:
    """Run `universe(mv, *args, **kwargs)` in `nworld` worlds (devices) with data-parallel training.

    universe: the script's main function; it receives this Multiverse first. On torch with several
        worlds it must be importable (defined at the top level of a module or script guarded by
        `if __name__ == '__main__':`), because every world is a new (spawned) process.
    nworld: how many worlds (devices). Under torchrun, its WORLD_SIZE wins.
    sync_bn: on torch, BN statistics over all worlds' batches (JAX always uses the global batch).
    timeout: seconds a collective may wait for the other ranks before it fails (torch / multi-host).
    shard: None (default: every world holds the whole model) or 'params': parameters, gradients and optimizer
        state are split over the worlds (torch FSDP2 `fully_shard`; JAX `NamedSharding` of each array on its
        largest dimension that divides by the world count), the step unchanged. For a model, or optimizer
        state, that does not fit one device.

    If any rank raises, dies or hangs, the other ranks are stopped and the call raises WorldError naming
    the rank that failed first, how (its exception, signal or exit status, or a hang), with its traceback
    (a hung rank's stack); an exception in a world run in this process is a WorldError too (the
    original is its __cause__). Ranks end within a second of a killed launcher.
    """

    def __init__(
        self,
        universe: Callable,
        nworld: int = 1,
        *,
        sync_bn: bool = False,
        timeout: float = 600.0,
        shard: str | None = None,
    ):
        if not callable(universe):
            raise TypeError(f"Multiverse(universe, ...) needs the script's main function, got {universe!r}")
        if not isinstance(nworld, int) or isinstance(nworld, bool) or nworld < 1:
            raise ValueError(f"nworld must be a positive integer, got {nworld!r}")
        if shard not in SHARDS:
            raise ValueError(f"Multiverse: shard must be one of {SHARDS}, got {shard!r}")
        self.universe = universe
        self._nworld = nworld
        self.shard = shard
        self.sync_bn = bool(sync_bn)
        self.timeout = float(timeout)
        self._joined = False
        self._tanks: weakref.WeakSet = weakref.WeakSet()

    # ------------------------------------------------------------------ launching

    def __call__(self, *args, **kwargs):
        """Launch: run the universe in every world; returns rank 0's result when it runs in this process."""
        universe = _universe()
        if _under_torchrun() and universe.SPAWNS:
            self._nworld = int(os.environ["WORLD_SIZE"])
        if (_under_torchrun() and universe.SPAWNS) or self._nworld == 1 or not universe.SPAWNS:
            try:
                return self._run(args, kwargs)
            except WorldError:
                raise
            except Exception as e:  # in this process: the same WorldError as a spawned rank's, or a peer's account
                cause = getattr(self, "_cause", None)
                raise (WorldError(cause) if cause else raised(e, *getattr(self, "_where", (0, 1)))) from e
        try:
            pickle.dumps(self.universe)
        except Exception as e:
            raise TypeError(
                f"Multiverse: {getattr(self.universe, '__qualname__', self.universe)!r} cannot be sent to new "
                "processes; define it at the top level of a module (and start the script under "
                f"`if __name__ == '__main__':`): {e}"
            ) from None
        env = {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(free_port()),
            "WORLD_SIZE": str(self._nworld),
            "LOCAL_WORLD_SIZE": str(self._nworld),
            "NEB_CORE": law.Law.CORE,
        }
        if "OMP_NUM_THREADS" not in os.environ:  # the ranks share the cores
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // self._nworld))
        launch(_enter_world, self._nworld, env, (self, args, kwargs), classify=_peer_fault)
        return None

    def _run(self, args: tuple, kwargs: dict):
        try:
            result = self.universe(self, *args, **kwargs)
        except BaseException as e:
            universe = _universe()
            self._where = (universe.rank(), universe.size())  # before leaving: then the rank is unknown
            if isinstance(e, Exception) and self._joined:  # tell the peers; hear whether one of them failed first
                self._cause = universe.blame(e, str(raised(e, *self._where)))
            self.leave(clean=False)  # no barrier: the other ranks may never get there
            raise
        self.leave()
        return result

    # ------------------------------------------------------------------ inside a world

    @property
    def nworld(self) -> int:
        """The number of worlds (devices) taking part."""
        return self._nworld

    @property
    def rank(self) -> int:
        """This process's rank (0 for the single JAX process; torch: 0..nworld-1)."""
        return _universe().rank()

    @property
    def worlds(self) -> range:
        """The worlds this process drives (torch: just its rank; JAX: every device of this host), so a
        script that slices its own data takes `len(mv.worlds)` shares starting at share `mv.worlds[0]`."""
        universe = _universe()
        n = universe.share(self._nworld)
        return range(universe.rank() * n, (universe.rank() + 1) * n)

    def init(self) -> Multiverse:
        """Join the world (torch: the process group; JAX: the other hosts when several are set up)."""
        if not self._joined:
            _universe().join(self._nworld, self.timeout)
            self._joined = True
        return self

    def leave(self, clean: bool = True) -> None:
        """Leave the world (done for you when the universe returns); `clean` waits for every rank first."""
        if self._joined:
            self._joined = False
            _universe().leave(clean)

    def sync(self, models, data=()):
        """Prepare crafts (one or a list) and Tanks (one or a list) for data-parallel training.

        Crafts: torch returns a DDP wrapper to use in the craft's place (attributes pass through;
        weights from rank 0); JAX replicates the craft's state on the mesh. Tanks: sharded so each
        rank reads its own part of every epoch (reshuffled per epoch when the Tank shuffles); on
        JAX one process feeds all its devices, so its Tank serves `batch_size` per device.
        Returns the model (one model, no data), else a tuple of models then tanks.
        """
        self.init()
        universe = _universe()
        single = not isinstance(models, (list, tuple))
        crafts = [models] if single else list(models)
        synced = [universe.sync(c, self.sync_bn, self._nworld, self.shard) for c in crafts]
        tanks = [data] if data and not isinstance(data, (list, tuple)) else list(data or ())
        for tank in tanks:
            if not hasattr(tank, "shard"):
                raise TypeError(f"Multiverse.sync: data must be Tanks, got {type(tank).__name__}")
            if tank not in self._tanks:
                tank.shard(universe.rank(), universe.size(), batch_size=tank.batch_size * universe.share(self._nworld))
                self._tanks.add(tank)
        if single and not tanks:
            return synced[0]
        return (*synced, *tanks)

    def reduce(self, tensor, aggregate: bool = False):
        """Combine every world's value: the mean, or the sum when `aggregate` (lists and tuples element-wise)."""
        if isinstance(tensor, (list, tuple)):
            return type(tensor)(self.reduce(v, aggregate) for v in tensor)
        return _universe().reduce(tensor, bool(aggregate))

    @contextlib.contextmanager
    def scope(self) -> Iterator[Multiverse]:
        """A parallel scope, kept for the brochure's code: both engines need nothing more inside it."""
        yield self

    def Executor(self, fn: Callable) -> Callable:
        """Decorator for the per-step function (the brochure's API): returns `fn` unchanged, since steps
        are already data-parallel (torch DDP; a JAX step is compiled for the mesh)."""
        return fn

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_joined": False, "_tanks": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _tanks=weakref.WeakSet())

    def __repr__(self) -> str:
        return f"Multiverse({getattr(self.universe, '__qualname__', self.universe)}, nworld={self._nworld})"


def not_a_craft(value) -> TypeError:
    """The error of an engine's `universe.sync` given something that is not a craft."""
    return TypeError(f"Multiverse.sync expects crafts, got {type(value).__name__}")


def _enter_world(rank: int, mv: Multiverse, args: tuple, kwargs: dict) -> None:
    """The body of each spawned world: run the universe, then leave the process group."""
    mv._run(args, kwargs)


def _peer_fault(exc: BaseException) -> str | None:
    """In a world: "lost" / "timeout" when `exc` only says that the other ranks failed this one, else None."""
    return _universe().peer_fault(exc)
