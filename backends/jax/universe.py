"""Data parallelism on JAX: one process drives a device Mesh with axis 'data' (SPMD, no pmap).

`sync` replicates a craft's state on the mesh (NamedSharding with an empty PartitionSpec); `coat`
then shards batches on their first axis, and every compiled step runs SPMD over the mesh: XLA
inserts the gradient all-reduce, and batch statistics (BN) are computed over the global batch.
Several hosts join through `jax.distributed.initialize` (one process per host).
"""

from __future__ import annotations

import os

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from nebulae.cockpit.multiverse import not_a_craft

from . import tensor

SPAWNS = False  # one process drives all local devices
AXIS = "data"
_mesh: Mesh | None = None
_joined = False
_CLUSTER_SIZES = ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")  # clusters jax.distributed detects by itself


def join(world: int, timeout: float) -> None:
    # the other hosts, when the environment describes several: JAX_COORDINATOR_ADDRESS with JAX_NUM_PROCESSES
    # and JAX_PROCESS_ID, or a cluster JAX detects itself (SLURM, Open MPI, Cloud TPU)
    global _joined
    if _joined:
        return
    env = os.environ
    if env.get("JAX_COORDINATOR_ADDRESS") and env.get("JAX_NUM_PROCESSES"):
        if int(env["JAX_NUM_PROCESSES"]) > 1:
            jax.distributed.initialize(
                env["JAX_COORDINATOR_ADDRESS"],
                int(env["JAX_NUM_PROCESSES"]),
                int(env.get("JAX_PROCESS_ID", 0)),
                initialization_timeout=int(timeout),
            )
            _joined = True
    elif any(int(env.get(v, "1") or 1) > 1 for v in _CLUSTER_SIZES):
        jax.distributed.initialize(initialization_timeout=int(timeout))
        _joined = True


def leave(clean: bool = True) -> None:
    global _joined, _mesh
    if _joined:
        jax.distributed.shutdown()
        _joined = False
    _mesh, tensor._sharding = None, None


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


def sync(craft, sync_bn: bool, world: int):
    # the craft itself, its whole state replicated on the mesh of `world` devices (made on first use);
    # batch statistics are global whatever `sync_bn` says: the step sees the whole batch
    if not isinstance(craft, nnx.Module):
        raise not_a_craft(craft)
    _make_mesh(world)
    place = replicated()
    for _, v in nnx.iter_graph(craft):
        if isinstance(v, nnx.Variable):
            v.set_raw_value(jax.device_put(v.get_raw_value(), place))
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


def peer_fault(exc: BaseException) -> str | None:  # one process drives the mesh: no peer to blame
    return None
