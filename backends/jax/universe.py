"""Data parallelism on JAX: one process drives a device Mesh with axis 'data' (SPMD, no pmap).

`sync` replicates a craft's state on the mesh (NamedSharding with an empty PartitionSpec), or with
shard='params' splits each floating-point state array over it (backends/jax/sharding.py: FSDP / ZeRO-3);
`coat` then shards batches on their first axis, and every compiled step runs SPMD over the mesh: XLA
inserts the gradient all-reduce (or, for split state, the weight gathers and gradient reduce-scatters),
and batch statistics (BN) are computed over the global batch. A compiled step writes each state array
back with the placement it came in with (`placement`), so the state stays split after steps.
Several hosts join through `jax.distributed.initialize` (one process per host).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import time

import jax
import numpy as np
from flax import nnx
from jax._src import distributed as _distributed  # its client: the coordination service's key-value store
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from nebulae.cockpit.launch import SETTLE, died_silently
from nebulae.cockpit.multiverse import not_a_craft

from . import sharding as _sharding
from . import tensor

SPAWNS = False  # one process drives all local devices
AXIS = "data"
_mesh: Mesh | None = None
_shard: str | None = None  # Multiverse(shard=...): None (replicated) or 'params' (split state)
_joined = False
_CLUSTER_SIZES = ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")  # clusters jax.distributed detects by itself


HEARTBEAT = 10  # seconds without a heartbeat before the coordination service declares a process dead
_FAILED = "nebulae/failed/"  # key prefix in the coordination service: a process's account of its failure
_abandoned = False  # this process left a world after an error: it ends without JAX's shutdown barrier


def join(world: int, timeout: float) -> None:
    # the other hosts, when the environment describes several: JAX_COORDINATOR_ADDRESS with JAX_NUM_PROCESSES
    # and JAX_PROCESS_ID, or a cluster JAX detects itself (SLURM, Open MPI, Cloud TPU)
    global _joined
    if _joined:
        return
    env = os.environ
    limits = {"initialization_timeout": int(timeout), "heartbeat_timeout_seconds": int(max(1, min(timeout, HEARTBEAT)))}
    if env.get("JAX_COORDINATOR_ADDRESS") and env.get("JAX_NUM_PROCESSES"):
        if int(env["JAX_NUM_PROCESSES"]) > 1:
            jax.distributed.initialize(
                env["JAX_COORDINATOR_ADDRESS"],
                int(env["JAX_NUM_PROCESSES"]),
                int(env.get("JAX_PROCESS_ID", 0)),
                **limits,
            )
            _joined = True
    elif any(int(env.get(v, "1") or 1) > 1 for v in _CLUSTER_SIZES):
        jax.distributed.initialize(**limits)
        _joined = True
    if _joined:
        atexit.register(_end_abandoned)  # before the teardown, where JAX's client would wait at its shutdown barrier


def leave(clean: bool = True) -> None:
    # not clean: no shutdown barrier (the peers may be dead or never get there; it would wait for the heartbeat
    # timeout, then abort the process); the process ends at exit without it (`_end_abandoned`)
    global _joined, _mesh, _shard, _abandoned
    if _joined:
        if clean:
            jax.distributed.shutdown()
        else:
            _abandoned = True
        _joined = False
    _mesh, _shard, tensor._sharding = None, None, None


def _end_abandoned() -> None:
    """At exit after a failed world: end now (status 1 after an unhandled error), before JAX's teardown waits
    for peers that are gone."""
    if not _abandoned:
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(1 if getattr(sys, "last_value", None) is not None else 0)


def blame(exc: BaseException, account: str) -> str | None:
    # several hosts: the process that failed first posts its account; one that only lost its peers waits
    # SETTLE seconds for a peer's account, else blames the peer that died without a word
    client = _distributed.global_state.client if _joined else None
    if client is None:
        return None
    me, n = jax.process_index(), jax.process_count()
    if peer_fault(exc) is None:
        with contextlib.suppress(Exception):
            client.key_value_set(f"{_FAILED}{me}", account)
        return None
    deadline = time.monotonic() + SETTLE
    while True:
        with contextlib.suppress(Exception):
            posted = sorted(client.key_value_dir_get(_FAILED))
            if posted:
                return posted[0][1]
        if time.monotonic() >= deadline:
            return died_silently([r for r in range(n) if r != me], n, me, _lost_in(exc) or exc)
        time.sleep(0.1)


def rank() -> int:  # asks JAX only once hosts joined, so it never starts JAX's devices early
    return jax.process_index() if _joined else 0


def size() -> int:
    return jax.process_count() if _joined else 1


def share(world: int) -> int:  # all of this host's share of the mesh
    return max(1, world // size())


def mesh() -> Mesh | None:
    """The world's mesh (None outside a Multiverse)."""
    return _mesh


def _make_mesh(world: int) -> Mesh:
    global _mesh
    if _mesh is None:
        devices = jax.devices()
        if world > len(devices):
            raise ValueError(
                f"Multiverse(nworld={world}) on JAX needs {world} devices, but JAX sees {len(devices)}: "
                f"{[str(d) for d in devices]} (on CPU, XLA_FLAGS=--xla_force_host_platform_device_count={world})"
            )
        _mesh = Mesh(np.array(devices[:world]), (AXIS,))
        tensor._sharding = NamedSharding(_mesh, PartitionSpec(AXIS))
    elif _mesh.devices.size != world:
        raise ValueError(f"a Multiverse of {_mesh.devices.size} devices exists already; cannot make one of {world}")
    return _mesh


def replicated():
    """The sharding that keeps a full copy on every device of the mesh (None outside a Multiverse)."""
    return None if _mesh is None else NamedSharding(_mesh, PartitionSpec())


def shard_mode() -> str | None:
    """How the state lies on the mesh: None (replicated, also outside a Multiverse) or 'params' (split)."""
    return _shard


def placement(value) -> NamedSharding | None:
    """Where a state array (or a tracer of one) lives on the world's mesh: replicated, or with shard='params'
    split by the rule of backends/jax/sharding.py; None outside a Multiverse.

    Args:
        value: the state array; only its shape and dtype are read.
    """
    if _mesh is None:
        return None
    if _shard is None:
        return replicated()
    return _sharding.placement(_mesh, AXIS, value)


def sync(craft, sync_bn: bool, world: int, shard: str | None = None):
    # the craft itself, its whole state replicated (or, shard='params', split) on the mesh of `world` devices
    # (made on first use); state made later (an optimizer's slots) is placed by the same rule when its step is
    # planned (step/plan.py). Batch statistics are global whatever `sync_bn` says: the step sees the whole batch
    global _shard
    if not isinstance(craft, nnx.Module):
        raise not_a_craft(craft)
    _make_mesh(world)
    _shard = shard
    for _, v in nnx.iter_graph(craft):
        if isinstance(v, nnx.Variable):
            v.set_raw_value(jax.device_put(v.get_raw_value(), placement(v.get_raw_value())))
    return craft


def unwrap(craft):
    return craft


def reduce(value, aggregate: bool):
    # A step sees every world's data at once, so a value with a leading batch axis split over the mesh holds
    # one chunk per world: they are averaged (summed) element-wise, as torch ranks would. A scalar computed
    # over the global batch is the world-wide value already and comes back as is.
    if not isinstance(value, jax.Array):  # a host value, this process's own: combined over the processes
        if size() == 1:
            return value
        from jax.experimental import multihost_utils

        gathered = np.asarray(multihost_utils.process_allgather(np.asarray(value)))
        return gathered.sum(0) if aggregate else gathered.mean(0)
    if _mesh is None or np.ndim(value) == 0:
        return value
    n = _mesh.devices.size
    if value.shape[0] % n:
        raise ValueError(
            f"Multiverse.reduce: leading axis {value.shape[0]} of shape {value.shape} cannot be split over {n} worlds"
        )
    chunks = value.reshape((n, value.shape[0] // n) + value.shape[1:])
    return chunks.sum(0) if aggregate else chunks.mean(0)


_LOST = ("connection closed by peer", "connection reset", "heartbeat timeout", "unavailable", "broken pipe")


def _lost_in(exc: BaseException | None) -> BaseException | None:
    """The error in `exc`'s chain (XLA's may be wrapped, e.g. by the step's own RuntimeError) that says a
    collective across hosts lost a peer, else None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if any(t in str(exc).lower() for t in _LOST):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def peer_fault(exc: BaseException) -> str | None:  # "lost": a collective across hosts lost a peer
    lost = _lost_in(exc) if _joined else None
    if lost is None:
        return None
    text = str(lost).lower()
    return "timeout" if "deadline_exceeded" in text or "timed out" in text else "lost"
