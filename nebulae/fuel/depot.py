"""Tank: shuffled, augmented NumPy batches from packed HDF5 files, a CSV or in-memory data, resumable, rank-sharded.

    tk = Tank('data.hdf5', {'image': 'vuint8', 'label': 'int64'}, batch_size=128,
              prep_fn=prep, workers=2, seed=7)
    for epoch in range(10):
        for mile in range(tk.MPE):
            batch = tk.next()          # {'image': (128, H, W, 3) uint8, 'label': (128,) int64}

Batches form one stream: the batch at (epoch, mile) depends only on (seed, epoch, mile, rank,
world), never on the worker count (see `nebulae.fuel.sampling` for the order and exactly which
samples an epoch leaves out). `prep_fn(item, rng)` receives a numpy Generator seeded from (seed,
epoch, sample index), so augmentation repeats exactly across runs, worker counts and resumes while
every sample and epoch draws differently. `state()` / `restore(state)` carry the position.

In-memory data takes the place of the file, with everything else the same (see `nebulae.fuel.memory`):

    tk = Tank({'image': images, 'label': labels}, batch_size=128, prep_fn=prep, workers=2)
    tk = Tank(dataset, batch_size=128)  # len(dataset), dataset[i] -> {'image': ..., 'label': ...}

Workers (`workers=k`): k processes each build whole batches (fetch, prep and collate of 128 samples
in one job) and hand them back through shared memory; they start once, when the Tank is built,
and live until `close()` (or `with Tank(...) as tk:`, or interpreter exit). With torch bound on a
few cores, keep torch's intra-op threads low (`torch.set_num_threads`) so they do not compete with
the workers. `pool='grain'` uses Grain's `mp_prefetch` instead of forked workers (see
`nebulae.fuel.pools` for its start-up cost and what it requires of the script).

`to_device=True`: batches come back already on the bound engine's device (`dock.coat`), and the
next batch is assembled and coated on a background thread while the caller works on the current one.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

import numpy as np

from nebulae.fuel.assembly import Assembler
from nebulae.fuel.csvspec import parse_dtype
from nebulae.fuel.pools import STALL_S, ForkPool, GrainPool, InProcess
from nebulae.fuel.sampling import Plan
from nebulae.fuel.sources import open_source

POOLS = ("fork", "grain")
_STATE_KEYS = ("epoch", "mile", "seed", "mpe", "samples", "batch_size", "world")


class Tank:
    """Serves batches of a dataset: `next()`, `MPE` batches per epoch, `len()` samples, resumable position.

    Args:
        data_path: a packed HDF5 file, a list (or glob pattern) of shards, or a .csv file; or in-memory data:
            a dict {column: NumPy array} of equal first dimension, or a map-style dataset (`len(data)` and
            `data[i]` -> {column: array}; a list of such dicts too).
        data_specf: {column: dtype} to read (None: every column as stored). fetch_fn(data, idx) -> item
        reads one sample (`data[column][idx]` is row idx decoded); prep_fn(item[, rng]) -> item prepares
        it; collate_fn(items) -> batch stacks them (default: dict of C-contiguous NumPy arrays).
        in_same_size: drop each epoch's ragged remainder so all batches are full (MPE counts full batches).
        workers: processes building batches (0: in the caller); prefetch: batches in flight per worker;
        pool: 'fork' (default) or 'grain'. seed: shuffle order and augmentation draws.
        worker_timeout: seconds a fork worker may take over one batch (default 600; None: no limit); past it,
        or when a worker dies (killed, crashed), `next()` stops every worker and raises RuntimeError naming
        the worker, its pid and how it ended (signal or exit code) or the limit it exceeded.
        rank, world: this process's share (default: env RANK / WORLD_SIZE, else 0 / 1).
        to_device: serve engine arrays (`dock.coat`), the next batch prepared on a background thread.
    """

    def __init__(
        self,
        data_path: str | os.PathLike | Sequence[str | os.PathLike] | Mapping[str, np.ndarray] | object,
        data_specf: Mapping[str, str] | None = None,
        batch_size: int = 32,
        shuffle: bool = True,
        in_same_size: bool = True,
        fetch_fn: Callable | None = None,
        prep_fn: Callable | None = None,
        collate_fn: Callable | None = None,
        *,
        workers: int = 0,
        seed: int = 0,
        to_device: bool = False,
        rank: int | None = None,
        world: int | None = None,
        prefetch: int = 2,
        pool: str = "fork",
        worker_timeout: float | None = STALL_S,
    ):
        for name, fn in (("fetch_fn", fetch_fn), ("prep_fn", prep_fn), ("collate_fn", collate_fn)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable or None, got {fn!r}")
        if not isinstance(workers, int) or workers < 0:
            raise ValueError(f"workers must be a non-negative integer, got {workers!r}")
        if not isinstance(prefetch, int) or prefetch < 1:
            raise ValueError(f"prefetch must be a positive integer, got {prefetch!r}")
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
        if worker_timeout is not None and (
            isinstance(worker_timeout, bool) or not isinstance(worker_timeout, int | float) or not worker_timeout > 0
        ):
            raise ValueError(f"worker_timeout must be a positive number of seconds or None, got {worker_timeout!r}")
        self.worker_timeout = worker_timeout
        self.source = open_source(data_path, data_specf)
        self.specs = _check_specs(data_specf, self.source)
        rank = _from_env("RANK", 0) if rank is None else rank
        world = _from_env("WORLD_SIZE", 1) if world is None else world
        self.plan = Plan(len(self.source), batch_size, shuffle, in_same_size, seed, rank, world)
        self.fetch_fn, self.prep_fn, self.collate_fn = fetch_fn, prep_fn, collate_fn
        self.workers, self.prefetch, self.pool_kind = workers, prefetch, pool
        self.to_device = bool(to_device)
        self._position = 0
        self._coat = None
        if self.to_device:
            from nebulae import law

            self._coat = law.backend().dock.coat
        self._res: dict = {"pool": None, "executor": None, "future": None}
        self._finalizer = weakref.finalize(self, _shutdown, self._res)
        self._res["pool"] = self._make_pool(0)
        if self.to_device:
            self._res["executor"] = ThreadPoolExecutor(1, thread_name_prefix="tank-to-device")
            self._submit()

    # ------------------------------------------------------------------ the public surface

    @property
    def MPE(self) -> int:
        """Batches per epoch for this rank."""
        return self.plan.mpe

    @property
    def batch_size(self) -> int:
        """Samples per batch served to this process."""
        return self.plan.batch_size

    @property
    def epoch(self) -> int:
        """The epoch of the next batch (0-based)."""
        return self._position // self.plan.mpe

    @property
    def mile(self) -> int:
        """The position of the next batch within its epoch, in [0, MPE)."""
        return self._position % self.plan.mpe

    @property
    def seed(self) -> int:
        """The seed of the shuffle order and of the per-sample augmentation generators."""
        return self.plan.seed

    def __len__(self) -> int:
        return len(self.source)

    def next(self):
        """The next batch (NumPy dict by default; device arrays with to_device); epochs roll over by themselves."""
        pool = self._live_pool()
        if self.to_device:
            batch = self._res["future"].result()
            self._submit()
        else:
            batch = pool.next()
        self._position += 1
        return batch

    def __next__(self):
        return self.next()

    def __iter__(self) -> Tank:
        return self

    def state(self) -> dict:
        """The position as a small JSON-able dict; `restore` on an equal Tank continues exactly from it."""
        return {
            "epoch": self.epoch,
            "mile": self.mile,
            "seed": self.plan.seed,
            "mpe": self.plan.mpe,
            "samples": len(self),
            "batch_size": self.plan.batch_size,
            "world": self.plan.world,
        }

    def restore(self, state: Mapping) -> Tank:
        """Continue from a `state()`: the following batches are exactly those the saved Tank would have served.

        Args:
            state: a dict from `state()` (JSON round trips keep it valid).

        Returns:
            this Tank, so that `tk = Tank(...).restore(state)` works.
        """
        missing = [k for k in _STATE_KEYS if k not in state]
        if missing:
            raise ValueError(f"Tank state lacks {', '.join(missing)}; it must come from Tank.state()")
        for key, mine in (("samples", len(self)), ("batch_size", self.plan.batch_size), ("world", self.plan.world)):
            if int(state[key]) != mine:
                raise ValueError(f"Tank state has {key} {state[key]} but this Tank has {mine}: it is another layout")
        if int(state["mpe"]) != self.plan.mpe:
            raise ValueError(
                f"Tank state has MPE {state['mpe']} but this Tank has {self.plan.mpe} (in_same_size differs?)"
            )
        epoch, mile = int(state["epoch"]), int(state["mile"])
        if epoch < 0 or not 0 <= mile < self.plan.mpe:
            raise ValueError(f"Tank state has an invalid position: epoch {epoch}, mile {mile}")
        position = epoch * self.plan.mpe + mile
        if int(state["seed"]) != self.plan.seed:
            p = self.plan
            self._replan(
                Plan(p.length, p.batch_size, p.shuffle, p.in_same_size, int(state["seed"]), p.rank, p.world), position
            )
            return self
        self._live_pool()
        self._drain()
        self._res["pool"].seek(position)
        self._position = position
        if self.to_device:
            self._submit()
        return self

    def shard(self, rank: int, world: int, batch_size: int | None = None) -> None:
        """Serve rank `rank`'s share of `world` ranks from now on (for Multiverse), in batches of `batch_size`
        (unchanged when None); restarts the current epoch."""
        p = self.plan
        if (rank, world, batch_size or p.batch_size) == (p.rank, p.world, p.batch_size):
            return
        epoch = self.epoch
        plan = Plan(p.length, batch_size or p.batch_size, p.shuffle, p.in_same_size, p.seed, rank, world)
        self._replan(plan, epoch * plan.mpe)

    def close(self) -> None:
        """Stop the workers and the device prefetch thread (also done at interpreter exit)."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        """Whether close() was called."""
        return not self._finalizer.alive

    def __enter__(self) -> Tank:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Tank({self.source.path!r}, {len(self)} samples, batch_size={self.plan.batch_size}, MPE={self.MPE}, "
            f"epoch={self.epoch}, mile={self.mile}, workers={self.workers})"
        )

    # ------------------------------------------------------------------ internals

    def _make_pool(self, start: int):
        assembler = Assembler(self.source, self.plan, self.fetch_fn, self.prep_fn, self.collate_fn, self.specs)
        if self.workers == 0:
            return InProcess(assembler, start)
        if self.pool_kind == "grain":
            return GrainPool(assembler, self.workers, self.prefetch, start)
        return ForkPool(
            assembler,
            self.workers,
            self.prefetch,
            start,
            before_fork=lambda: self.source.before_fork(self.specs),
            stall=self.worker_timeout,
        )

    def _replan(self, plan: Plan, position: int) -> None:
        """Switch to another plan (seed or sharding): new workers, stream restarted at `position`."""
        self._live_pool()
        self._drain()
        self._res["pool"].close()
        self._res["pool"] = None
        self.plan = plan
        self._res["pool"] = self._make_pool(position)
        self._position = position
        if self.to_device:
            self._submit()

    def _live_pool(self):
        if self.closed:
            raise RuntimeError(f"this Tank over {self.source.path} is closed")
        return self._res["pool"]

    def _submit(self) -> None:
        pool, coat = self._res["pool"], self._coat
        self._res["future"] = self._res["executor"].submit(lambda: coat(pool.next()))

    def _drain(self) -> None:
        future: Future | None = self._res["future"]
        if future is not None:
            self._res["future"] = None
            with contextlib.suppress(Exception):  # the batch is thrown away; so is its failure
                future.result()


def _shutdown(res: dict) -> None:
    executor, future = res.get("executor"), res.get("future")
    if future is not None:
        future.cancel()
    if executor is not None:
        executor.shutdown(wait=threading.current_thread() is threading.main_thread())
    if res.get("pool") is not None:
        res["pool"].close()


def _from_env(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"environment variable {name}={text!r} is not an integer") from None


def _check_specs(data_specf: Mapping[str, str] | None, source) -> dict[str, str]:
    """{column: dtype} to read, each key checked against the file's columns and each dtype parsed."""
    if data_specf is None:
        return dict(source.columns)
    if not isinstance(data_specf, Mapping):
        raise TypeError(f"data_specf must be a dict {{column: dtype}} or None, got {type(data_specf).__name__}")
    kinds = getattr(source, "specs", {})
    for key, dtype in data_specf.items():
        if key not in source.columns:
            raise ValueError(
                f"data_specf key {key!r} is not a column of {source.path}; its columns are: {', '.join(source.columns)}"
            )
        try:
            parsed = parse_dtype(dtype)
        except (TypeError, ValueError) as err:
            raise ValueError(f"data_specf[{key!r}]: {err}") from None
        kind = kinds[key].kind if key in kinds else None
        if parsed.base == "str" and kind in ("image", "frames"):
            raise ValueError(f"data_specf[{key!r}] is 'str' but {key!r} is an image column of {source.path}")
    return dict(data_specf)
