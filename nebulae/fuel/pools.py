"""Where batches are assembled: in the calling process, in forked worker processes, or in Grain workers.

Every pool serves the endless stream of batch positions from a starting position, in order:
`next()` gives the batch at the current position and moves on, `seek(position)` restarts the
stream elsewhere (what `Tank.restore` uses), `close()` stops the workers. A worker receives a
position and sends back the whole collated batch, so there is one message per batch, never per
sample. A batch depends only on its position, never on which worker made it.

- `InProcess`: no workers.
- `ForkPool` (default for workers > 0): `fork`ed processes that inherit the source (the RAM caches
  of the packed file are loaded once before forking and shared; HDF5 handles are closed first and
  each worker opens its own). Batch arrays travel through shared anonymous memory, `prefetch`
  slots per worker sized from the first batch (built in the caller); a batch that does not fit is
  pickled through the pipe instead. Jobs go round-robin, so worker w makes positions w, w+k, ...
- `GrainPool`: Grain's `mp_prefetch` over a MapDataset of positions. Grain spawns fresh
  interpreters: the user's functions must be importable (defined at module level, the script's
  work under `if __name__ == '__main__':`), and each worker imports Grain (and jax when installed).
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import multiprocessing as mp
import os
import pickle
import random
import signal
import sys
import time
import traceback
import warnings
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection

import numpy as np

from nebulae import faults
from nebulae.fuel.assembly import Assembler

_ALIGN = 64
_POLL_S = 1.0
STALL_S = 600.0  # default Tank(worker_timeout=...): a worker silent this long on one batch is stuck


def worker_batch(assembler: Assembler, position: int):
    """Build the batch at `position` in a worker, first reseeding the global NumPy / Python generators.

    Reseeding per batch from (seed, rank, position) makes a prep_fn that draws from `np.random` or
    `random` differ between workers and batches and repeat from run to run; a prep_fn that takes the
    per-sample Generator is reproducible in every setting (also with 0 workers).
    """
    plan = assembler.plan
    entropy = np.random.SeedSequence([plan.seed, plan.rank, int(position), 3]).generate_state(4)
    np.random.seed(entropy)
    random.seed(int(entropy[0]) << 32 | int(entropy[1]))
    return assembler.batch(position)


class InProcess:
    """Batches made in the calling process, one at a time."""

    def __init__(self, assembler: Assembler, start: int):
        self.assembler, self.position = assembler, start

    def next(self):
        """The batch at the current position."""
        batch = self.assembler.batch(self.position)
        self.position += 1
        return batch

    def seek(self, position: int) -> None:
        """Continue from `position`."""
        self.position = position

    def close(self) -> None:
        """Nothing to stop."""


# --------------------------------------------------------------------------- fork + shared memory


def _strip(tree, arrays: list):
    """`tree` with every non-object ndarray replaced by its number in `arrays` (appended there)."""
    if isinstance(tree, np.ndarray) and not tree.dtype.hasobject:
        arrays.append(tree)
        return _Leaf(len(arrays) - 1)
    if isinstance(tree, dict):
        return type(tree)((k, _strip(v, arrays)) for k, v in tree.items())
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(_strip(v, arrays) for v in tree))
    if isinstance(tree, (tuple, list)):
        return type(tree)(_strip(v, arrays) for v in tree)
    return tree


def _fill(tree, arrays: list):
    if isinstance(tree, _Leaf):
        return arrays[tree.n]
    if isinstance(tree, dict):
        return type(tree)((k, _fill(v, arrays)) for k, v in tree.items())
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(_fill(v, arrays) for v in tree))
    if isinstance(tree, (tuple, list)):
        return type(tree)(_fill(v, arrays) for v in tree)
    return tree


class _Leaf:
    __slots__ = ("n",)

    def __init__(self, n: int):
        self.n = n

    def __reduce__(self):
        return _Leaf, (self.n,)


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def batch_bytes(batch) -> int:
    """Bytes a batch's arrays take in a shared-memory slot."""
    arrays: list = []
    _strip(batch, arrays)
    return sum(_aligned(a.nbytes) for a in arrays)


def _pack(batch, slot: mmap.mmap):
    """('slot', tree, layout) with the arrays written into `slot`, or ('pickle', batch) when too big."""
    arrays: list = []
    tree = _strip(batch, arrays)
    if sum(_aligned(a.nbytes) for a in arrays) > len(slot):
        return ("pickle", batch)
    offset, where = 0, []
    for a in arrays:
        view = np.ndarray(a.shape, a.dtype, buffer=slot, offset=offset)
        view[...] = a
        where.append((offset, a.shape, a.dtype.str))
        offset += _aligned(a.nbytes)
    return ("slot", tree, where)


def _unpack(tree, where: list, slot: mmap.mmap):
    arrays = [np.ndarray(shape, np.dtype(dt), buffer=slot, offset=off).copy() for off, shape, dt in where]
    return _fill(tree, arrays)


@contextlib.contextmanager
def _sequential_opencv():
    """Fork with OpenCV set to one thread: children inherit it and never touch the parent's thread pool,
    which does not exist after fork (reconfiguring it in a child deadlocks once the parent has used it)."""
    cv2 = sys.modules.get("cv2")
    before = cv2.getNumThreads() if cv2 is not None else None
    if cv2 is not None:
        cv2.setNumThreads(1)
    try:
        yield
    finally:
        if cv2 is not None:
            cv2.setNumThreads(before)


def _serve(conn: Connection, assembler: Assembler, slots: list[mmap.mmap], parent: int) -> None:
    """Worker loop: receive (position, slot), answer with the packed batch or the error."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it then closes us
    while True:
        while not conn.poll(_POLL_S):
            if os.getppid() != parent:
                return
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        position, slot = job
        try:
            faults.point("tank.worker-batch")
            reply = _pack(worker_batch(assembler, position), slots[slot])
        except BaseException as err:  # noqa: BLE001 (sent to the parent, which raises it)
            text = traceback.format_exc()
            try:
                pickle.dumps(err)
            except Exception:
                err = None
            reply = ("error", err, text)
        try:
            conn.send(reply)
        except Exception:  # e.g. a batch that does not fit its slot and does not pickle
            conn.send(("error", None, traceback.format_exc()))


class ForkPool:
    """`workers` forked processes, each with `prefetch` batches in flight in shared-memory slots."""

    def __init__(
        self,
        assembler: Assembler,
        workers: int,
        prefetch: int,
        start: int,
        before_fork: Callable[[], None] | None = None,
        stall: float | None = STALL_S,
    ):
        first = assembler.batch(start)  # in the caller: sizes the slots and shows errors plainly
        size = max(batch_bytes(first) * 3 // 2, 2**20)  # room for somewhat bigger batches
        if before_fork is not None:
            before_fork()
        ctx = mp.get_context("fork")
        self.k, self.depth = workers, prefetch
        self.slots = [[mmap.mmap(-1, size) for _ in range(prefetch)] for _ in range(workers)]
        self.conns: list[Connection] = []
        self.procs = []
        with _sequential_opencv():
            self._start(ctx, assembler, workers)
        self.inflight: deque[tuple[int, int, int]] = deque()  # (worker, slot, position) in send order
        self.stall = stall
        self.ready = [first]  # the batch built here, served first
        self.closed = False
        self.failure: str | None = None  # why the workers were stopped, repeated by later calls
        self._restart(start + 1)
        self.position = start

    def _start(self, ctx, assembler: Assembler, workers: int) -> None:
        for w in range(workers):
            here, there = ctx.Pipe()
            proc = ctx.Process(
                target=_serve, args=(there, assembler, self.slots[w], os.getpid()), daemon=True, name=f"tank-{w}"
            )
            with warnings.catch_warnings():
                # JAX (and Python >= 3.12) warn that forking a multithreaded process may deadlock a child
                # that uses those threads' locks; the workers run only NumPy/HDF5/decoding, never JAX.
                warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
                warnings.filterwarnings("ignore", message=r".*use of fork\(\) may lead to deadlocks")
                proc.start()
            there.close()
            self.conns.append(here)
            self.procs.append(proc)

    def _restart(self, position: int) -> None:
        self.sent = self.base = position
        for _ in range(self.k * self.depth):
            self._send((self.sent - self.base) % self.k)

    def _send(self, worker: int) -> None:
        used = {s for w, s, _ in self.inflight if w == worker}
        slot = next(s for s in range(self.depth) if s not in used)
        try:
            self.conns[worker].send((self.sent, slot))
        except OSError:  # BrokenPipeError / ConnectionResetError: the worker is gone
            self._fail(self._died(worker, self.sent))
        self.inflight.append((worker, slot, self.sent))
        self.sent += 1

    def _receive(self, discard: bool = False):
        """The reply for the oldest job in flight (popped only once it has arrived, so Ctrl-C loses nothing)."""
        worker, slot, position = self.inflight[0]
        conn, proc = self.conns[worker], self.procs[worker]
        started = time.monotonic()
        try:
            while not conn.poll(_POLL_S if self.stall is None else min(_POLL_S, max(self.stall, 0.01))):
                if not proc.is_alive():
                    self._fail(self._died(worker, position))
                waited = time.monotonic() - started
                if self.stall is not None and waited >= self.stall:
                    self._fail(
                        f"Tank worker {worker} (pid {proc.pid}) produced nothing for {waited:.1f} s on batch "
                        f"position {position}, over the Tank's worker_timeout={self.stall:g} s: it is stuck "
                        "(in fetch_fn, prep_fn, collate_fn or a read); all workers were stopped. Fix the hang, or "
                        "pass a larger worker_timeout (None: wait forever) if a batch really takes that long"
                    )
            reply = conn.recv()
        except (EOFError, OSError):  # the pipe broke: the worker died (perhaps mid-reply)
            self._fail(self._died(worker, position))
        self.inflight.popleft()
        if discard:
            return None
        if reply[0] == "error":
            self.close()
            err, text = reply[1], reply[2]
            if err is None:
                raise RuntimeError(f"Tank worker {worker} failed on batch position {position}:\n{text}")
            err.add_note(f"(raised in Tank worker {worker} on batch position {position}; worker traceback:)\n{text}")
            raise err
        if reply[0] == "pickle":
            return reply[1]
        return _unpack(reply[1], reply[2], self.slots[worker][slot])

    def _died(self, worker: int, position: int) -> str:
        """The message for worker `worker` found dead while batch `position` was due."""
        proc = self.procs[worker]
        proc.join(timeout=2)  # it may still be exiting: wait for its status
        code = proc.exitcode
        if code is None:
            how = "closed its pipe but is still running"
        elif code < 0:
            try:
                how = f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
            if code == -signal.SIGKILL:
                how += " (the out-of-memory killer, or a kill -9)"
        else:
            how = f"exited with code {code}"
        return (
            f"Tank worker {worker} (pid {proc.pid}) {how} while making batch position {position}; "
            "all workers were stopped. Make a new Tank (restore its state() to continue where it stopped)"
        )

    def _fail(self, message: str):
        """Stop every worker at once and raise RuntimeError(message); later calls repeat it."""
        self.failure = message
        self.close(wait=False)
        raise RuntimeError(message)

    def _check_open(self) -> None:
        if self.failure is not None:
            raise RuntimeError(f"this Tank's workers were stopped: {self.failure}")
        if self.closed:
            raise RuntimeError("this Tank is closed")

    def next(self):
        """The batch at the current position."""
        self._check_open()
        if self.ready:
            batch = self.ready.pop()
        else:
            worker = self.inflight[0][0]
            batch = self._receive()
            self._send(worker)
        self.position += 1
        return batch

    def seek(self, position: int) -> None:
        """Drop the batches in flight and continue from `position`."""
        self._check_open()
        while self.inflight:
            self._receive(discard=True)
        self.ready = []
        self._restart(position)
        self.position = position

    def close(self, wait: bool = True) -> None:
        """Stop the workers (politely, then by signal; at once without `wait`) and free the shared memory."""
        if self.closed:
            return
        self.closed = True
        for conn in self.conns:
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)
        for proc in self.procs:
            proc.join(timeout=5 if wait else 0.2)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        for conn in self.conns:
            conn.close()
        for slots in self.slots:
            for slot in slots:
                slot.close()
        self.inflight.clear()


# --------------------------------------------------------------------------- Grain


def import_grain():
    """Import Grain quietly: absl flags marked parsed (plain scripts) and its jax-profiler warnings silenced."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        import grain
    finally:
        absl.setLevel(level)
    return grain


class _Positions:
    """An endless random-access sequence of stream positions from `start` (a Grain data source)."""

    def __init__(self, start: int):
        self.start = start

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, i: int) -> int:
        return self.start + int(i)


class _GrainJob:
    def __init__(self, assembler: Assembler):
        self.assembler = assembler

    def __call__(self, position: int):
        return worker_batch(self.assembler, position)


def _own(tree) -> tuple:
    """(tree, arrays) with Grain's shared-memory arrays copied out and their blocks unlinked at once.

    Left to Grain, each block is unlinked when its array is garbage-collected, which at interpreter
    exit leaks blocks and raises in `__del__`.
    """
    arrays: list = []
    tree = _strip(tree, arrays)
    owned = []
    for a in arrays:
        shm = getattr(a, "shm", None)
        owned.append(np.array(a, copy=True, subok=False))
        if shm is not None and getattr(a, "_unlink_on_del", False):
            a._unlink_on_del = False
            with contextlib.suppress(FileNotFoundError):
                shm.unlink()
    return tree, owned


class GrainPool:
    """Grain `mp_prefetch` workers (spawned), one Grain element = one whole batch."""

    def __init__(self, assembler: Assembler, workers: int, prefetch: int, start: int):
        self.grain = import_grain()
        self.assembler, self.k, self.depth = assembler, workers, prefetch
        self.it = None
        self.seek(start)

    def next(self):
        """The batch at the current position."""
        if self.it is None:
            raise RuntimeError("this Tank is closed")
        batch = _fill(*_own(next(self.it)))
        self.position += 1
        return batch

    def seek(self, position: int) -> None:
        """Restart Grain's iterator at `position` (new workers)."""
        self.close()
        grain = self.grain
        # No read threads: an element is a whole batch (Grain's default would run 16 threads 500 batches ahead).
        serial = grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)
        ds = grain.MapDataset.source(_Positions(position)).map(_GrainJob(self.assembler)).to_iter_dataset(serial)
        options = grain.MultiprocessingOptions(num_workers=self.k, per_worker_buffer_size=self.depth)
        self.it = iter(ds.mp_prefetch(options))
        self.position = position

    def close(self) -> None:
        """Stop Grain's workers and release its shared-memory blocks."""
        if self.it is not None:
            self.it.close()
            self.it = None
